"""What a CDA R2 header says, as read by :func:`dmp_bridge.cda.read_cda_header`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from dmp_bridge.errors import XdmError
from dmp_bridge.hl7v2 import Coded
from dmp_bridge.ins import InsCheck
from dmp_bridge.xdm_model import IDNAT_OID

LEVEL1_TEMPLATE = "1.3.6.1.4.1.19376.1.2.20"


@dataclass(frozen=True)
class InstanceId:
    """An HL7 v3 II: ``root`` (OID or UUID) and optional ``extension``."""

    root: str | None
    extension: str | None = None

    @property
    def xds_unique_id(self) -> str | None:
        """The form XDS uses for a document uniqueId: ``root`` or ``root^extension``."""
        if self.root is None:
            return None
        return f"{self.root}^{self.extension}" if self.extension else self.root


@dataclass(frozen=True)
class NamePart:
    """One part of a name: ``kind`` is family, given, prefix or suffix."""

    kind: str
    value: str
    qualifier: str | None = None


@dataclass(frozen=True)
class CdaName:
    """A person name, keeping the French INS qualifiers (BR birth, CL used, SP spouse)."""

    parts: tuple[NamePart, ...]

    def _find(self, kind: str, qualifier: str | None) -> str | None:
        return next(
            (p.value for p in self.parts if p.kind == kind and p.qualifier == qualifier), None
        )

    @property
    def birth_family(self) -> str | None:
        """The birth name (family@BR, else the unqualified family)."""
        return self._find("family", "BR") or self._find("family", None)

    @property
    def birth_given(self) -> str | None:
        """The list of birth first names (unqualified given, else given@BR)."""
        return self._find("given", None) or self._find("given", "BR")

    @property
    def used_family(self) -> str | None:
        """The used name (family@CL, else family@SP, else the birth name)."""
        return self._find("family", "CL") or self._find("family", "SP") or self.birth_family

    @property
    def used_given(self) -> str | None:
        """The used first name (given@CL, else the first birth first name)."""
        used = self._find("given", "CL")
        if used:
            return used
        first = self._find("given", "BR") or self.birth_given
        return first.split()[0] if first else None


@dataclass(frozen=True)
class CdaOrganisation:
    """An organisation: id (FINESS, SIRET...) and name."""

    id: InstanceId | None
    name: str | None


@dataclass(frozen=True)
class CdaPerson:
    """An author or legal authenticator: id, name, time, role code and organisation."""

    id: InstanceId | None
    name: CdaName | None
    time: datetime | None
    code: Coded | None
    organisation: CdaOrganisation | None

    @property
    def id_nat(self) -> str | None:
        """The idNat when the id is issued under the idNat OID."""
        return self.id.extension if self.id and self.id.root == IDNAT_OID else None


@dataclass(frozen=True)
class CdaPatient:
    """recordTarget/patientRole: identifiers (INS first checked), names and traits."""

    ids: tuple[InstanceId, ...]
    ins: InsCheck | None
    names: tuple[CdaName, ...]
    birth_time: date | None
    gender: str | None
    telecoms: tuple[str, ...]

    @property
    def mssante_address(self) -> str | None:
        """The patient's MSSanté address from a ``mailto:<INS>@patient.…`` telecom."""
        for telecom in self.telecoms:
            if telecom.lower().startswith("mailto:") and "@patient." in telecom.lower():
                return telecom[len("mailto:") :]
        return None


@dataclass(frozen=True)
class CdaHeader:
    """The header facts of a ClinicalDocument, with per-document refusals and warnings."""

    document_id: InstanceId
    set_id: InstanceId | None
    version_number: int | None
    code: Coded | None
    translations: tuple[Coded, ...]
    title: str | None
    effective_time: datetime | None
    confidentiality: Coded | None
    language_code: str | None
    template_ids: tuple[InstanceId, ...]
    patient: CdaPatient
    authors: tuple[CdaPerson, ...]
    custodian: CdaOrganisation | None
    legal_authenticator: CdaPerson | None
    replaces: InstanceId | None
    healthcare_facility_code: Coded | None
    level: int
    body_media_type: str | None
    refusals: tuple[XdmError, ...] = ()
    warnings: tuple[str, ...] = ()
    embedded: bytes | None = field(default=None, repr=False)

    @property
    def is_replacement(self) -> bool:
        """True when relatedDocument@typeCode=RPLC names a parent (not the version number)."""
        return self.replaces is not None
