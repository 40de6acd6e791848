"""What an XDM package holds once read: submission sets, document entries, signatures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dmp_bridge.errors import XdmError
from dmp_bridge.hl7v2 import Coded, Cx, Xcn, Xon
from dmp_bridge.ins import InsCheck

IDNAT_OID = "1.2.250.1.71.4.2.1"  # national professional identifier (idNat: 8+RPPS, 0+ADELI...)
CONFIDENTIALITY_HL7 = "2.16.840.1.113883.5.25"
CONFIDENTIALITY_FR = "1.2.250.1.213.1.1.4.13"  # TRE_A07: DMP visibility flags
MASQUE_PS = "MASQUE_PS"
INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
INVISIBLE_REPRESENTANTS_LEGAUX = "INVISIBLE_REPRESENTANTS_LEGAUX"
FRENCH_FLAGS = (MASQUE_PS, INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX)


@dataclass(frozen=True)
class Author:
    """An XDS author: person (XCN), institutions (XON), roles, specialties, telecoms."""

    person: Xcn | None
    institutions: tuple[Xon, ...] = ()
    roles: tuple[Coded, ...] = ()
    specialties: tuple[Coded, ...] = ()
    telecoms: tuple[str, ...] = ()

    @property
    def id_nat(self) -> str | None:
        """The professional's idNat when the person id is issued under the idNat OID."""
        if self.person is not None and self.person.authority_oid == IDNAT_OID:
            return self.person.id
        return None


@dataclass(frozen=True)
class SubmissionSet:
    """The XDSSubmissionSet of one subset."""

    entry_uuid: str
    unique_id: str | None
    source_id: str | None
    patient_id: Cx
    authors: tuple[Author, ...]
    submission_time: datetime | None
    intended_recipients: tuple[str, ...]
    title: str | None
    content_type_code: Coded | None
    subset: str


def _has_flag(codes: tuple[Coded, ...], flag: str) -> bool:
    return any(c.code == flag and c.scheme == CONFIDENTIALITY_FR for c in codes)


@dataclass(frozen=True)
class DocumentEntry:
    """One XDSDocumentEntry (a clinical document) with its bytes, hash and size checked."""

    entry_uuid: str
    unique_id: str | None
    patient_id: Cx
    ins: InsCheck | None
    source_patient_id: str | None
    source_patient_info: tuple[str, ...]
    class_code: Coded | None
    type_code: Coded | None
    format_code: Coded | None
    confidentiality_codes: tuple[Coded, ...]
    healthcare_facility_type_code: Coded | None
    practice_setting_code: Coded | None
    event_codes: tuple[Coded, ...]
    authors: tuple[Author, ...]
    creation_time: datetime | None
    service_start_time: datetime | None
    service_stop_time: datetime | None
    mime_type: str | None
    size: int | None
    hash: str | None
    title: str | None
    comments: str | None
    language_code: str | None
    uri: str | None
    path: str
    action: str | None
    replaces: str | None
    subset: str
    refusals: tuple[XdmError, ...] = ()
    data: bytes = field(default=b"", repr=False)
    # The creationTime digits as written, when they carry no UTC offset: ``creation_time``
    # reads them as UTC (ITI rule), but the ANS CDA-to-XDM transform copies the CDA's
    # local effectiveTime there (see cda_crosscheck.agreed_creation_time).
    creation_time_local: datetime | None = None

    @property
    def author(self) -> Author | None:
        """The first author, the one the DMP shows."""
        return self.authors[0] if self.authors else None

    @property
    def masked_from_professionals(self) -> bool:
        """MASQUE_PS: hidden from professionals other than the médecin traitant."""
        return _has_flag(self.confidentiality_codes, MASQUE_PS)

    @property
    def invisible_to_patient(self) -> bool:
        """INVISIBLE_PATIENT: hidden from the patient until a professional shows it."""
        return _has_flag(self.confidentiality_codes, INVISIBLE_PATIENT)

    @property
    def invisible_to_legal_representatives(self) -> bool:
        """INVISIBLE_REPRESENTANTS_LEGAUX: hidden from the patient's guardians."""
        return _has_flag(self.confidentiality_codes, INVISIBLE_REPRESENTANTS_LEGAUX)


@dataclass(frozen=True)
class SignatureEntry:
    """An IHE DSG signature document: recorded, never filed as a clinical document."""

    entry_uuid: str
    unique_id: str | None
    mime_type: str | None
    size: int | None
    hash: str | None
    uri: str | None
    path: str
    signs: tuple[str, ...]  # targets of its "signs" associations (the SubmissionSet)
    subset: str
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class XdmPackage:
    """A whole XDM package: structural problems raise; per-document ones are in ``refusals``."""

    submission_sets: tuple[SubmissionSet, ...]
    documents: tuple[DocumentEntry, ...]
    signatures: tuple[SignatureEntry, ...]
    warnings: tuple[str, ...]

    @property
    def refusals(self) -> tuple[XdmError, ...]:
        """Every reason, document by document, why a document cannot be filed as is."""
        return tuple(r for d in self.documents for r in d.refusals)
