"""Read a message's XDM packages (no database): each document entry with its CDA header and PDF.

``read_packages`` runs in a worker thread: it parses every package, reads
each CDA header, cross-checks it with METADATA.XML and gathers every
refusal, so the filing transaction only decides and writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from dmp_bridge.cda import cross_check, read_cda_header
from dmp_bridge.cda_crosscheck import agreed_creation_time
from dmp_bridge.cda_model import CdaHeader
from dmp_bridge.dispensation import dispensation_refusal
from dmp_bridge.documents import DocumentDraft
from dmp_bridge.errors import XdmError, other
from dmp_bridge.ins import is_ins_oid
from dmp_bridge.xdm import read_xdm
from dmp_bridge.xdm_model import DocumentEntry
from mss.policy.dmp_metadata import CDA_TYPES, decide_dmp_format, media_type
from mss.policy.mss_headers import PackageClaims


@dataclass
class EntryReading:
    """One document entry, its CDA header (when it is CDA) and everything that stops its filing."""

    entry: DocumentEntry
    header: CdaHeader | None
    refusals: list[XdmError] = field(default_factory=list)
    pdf: bytes | None = None

    @property
    def title(self) -> str:
        return self.entry.title or (self.header.title if self.header else None) or "document"

    @property
    def target_unique_id(self) -> str | None:
        """The uniqueId the action C or D names (the RPLC parent, or the document itself)."""
        if self.entry.action == "D":
            return self.entry.unique_id
        if self.header is not None and self.header.replaces is not None:
            return self.header.replaces.xds_unique_id
        return None


@dataclass
class PackageReading:
    """A package read, or the error that refuses it whole."""

    entries: list[EntryReading] = field(default_factory=list)
    error: XdmError | None = None


def _read_entry(entry: DocumentEntry) -> EntryReading:
    reading = EntryReading(entry, None, list(entry.refusals))
    accepted = decide_dmp_format(entry.mime_type)
    if not accepted:
        reading.refusals.append(other(accepted.sentence, accepted.sentence_fr))
        return reading
    kind = media_type(entry.mime_type)
    if kind in CDA_TYPES:
        try:
            reading.header = read_cda_header(entry.data)
        except XdmError as error:
            reading.refusals.append(error)
            return reading
        reading.refusals += list(reading.header.refusals)
        reading.refusals += cross_check(entry, reading.header)
        if (unreadable := dispensation_refusal(reading.header, entry.data)) is not None:
            reading.refusals.append(unreadable)
        if reading.header.body_media_type == "application/pdf" and reading.header.embedded:
            reading.pdf = reading.header.embedded
    elif kind == "application/pdf":
        reading.pdf = entry.data
    return reading


def read_packages(packages: list[bytes], pdfs: list[bytes]) -> list[PackageReading]:
    """Every package of a message; a lone PDF attachment renders a lone CDA without one."""
    readings: list[PackageReading] = []
    for data in packages:
        try:
            package = read_xdm(data)
        except XdmError as error:
            readings.append(PackageReading(error=error))
            continue
        readings.append(PackageReading([_read_entry(e) for e in package.documents]))
    entries = [e for r in readings for e in r.entries]
    if len(entries) == 1 and len(pdfs) == 1 and entries[0].pdf is None:
        entries[0].pdf = pdfs[0]
    return readings


def qualified_ins(header: CdaHeader) -> bool:
    """The CDA carries a qualified INS: a complete matricule under an INS OID and the four
    traits (birth name, first given name, birth date, sex), as X-MSS-INS counts it."""
    patient = header.patient
    ins = patient.ins
    if ins is None or not ins.complete or not is_ins_oid(ins.oid):
        return False
    named = any(n.birth_family and n.birth_given for n in patient.names)
    return named and patient.birth_time is not None and bool(patient.gender)


def package_claims(
    readings: list[PackageReading], codecda: str | None, ins: str | None
) -> PackageClaims:
    """The message's X-MSS headers beside what its packages hold (``decide_mss_headers``)."""
    headers = [e.header for r in readings for e in r.entries if e.header is not None]
    return PackageClaims(
        codecda=codecda,
        ins=ins,
        document_codes=tuple(h.code.code for h in headers if h.code is not None and h.code.code),
        qualified_ins=any(qualified_ins(h) for h in headers),
        ins_present=any(h.patient.ins is not None for h in headers),
    )


def _name(entry: DocumentEntry) -> str:
    author = entry.author
    person = author.person if author is not None else None
    if person is None:
        return ""
    return " ".join(p for p in (person.given, person.family) if p)


def draft_of(reading: EntryReading, *, message_id: str, stored_message_id: int) -> DocumentDraft:
    """The record's view of one entry (metadata from METADATA.XML, completed by the CDA header)."""
    entry, header = reading.entry, reading.header
    author = entry.author
    institution = author.institutions[0] if author is not None and author.institutions else None
    type_code, class_code = entry.type_code, entry.class_code
    created: dt.datetime | None = agreed_creation_time(entry, header) or entry.creation_time
    return DocumentDraft(
        content=entry.data,
        mime_type=entry.mime_type or "application/octet-stream",
        title=reading.title,
        unique_id=entry.unique_id or "",
        entry_uuid=entry.entry_uuid,
        type_code=type_code.code if type_code else "",
        type_system=(type_code.scheme or "") if type_code else "",
        type_label=(type_code.display or "") if type_code else "",
        class_code=class_code.code if class_code else "",
        class_system=(class_code.scheme or "") if class_code else "",
        class_label=(class_code.display or "") if class_code else "",
        author_id_nat=author.id_nat if author is not None else None,
        author_name=_name(entry),
        author_institution=(institution.name or "") if institution else "",
        author_institution_id=institution.id if institution else None,
        creation_time=created,
        masked_from_professionals=entry.masked_from_professionals,
        invisible_to_patient=entry.invisible_to_patient,
        invisible_to_legal_representatives=entry.invisible_to_legal_representatives,
        pdf=reading.pdf,
        source="mss",
        source_message_id=message_id,
        stored_message_id=stored_message_id,
    )
