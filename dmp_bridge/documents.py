"""The document store: every access to a patient's documents, through the consent engine, audited.

The portal and the professional API call these functions inside their
transaction (``async with db.write() as session``). A refusal raises
``DmpRefused`` carrying the consent decision (HTTP status and sentences);
an access allowed only through break-glass is logged and notified here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused, Viewer, audit, release_withheld_events
from dmp_bridge.consent_store import consent_facts
from dmp_bridge.emergency import record_emergency_access
from dmp_bridge.models import CURRENT, DELETED, REPLACED, DmpDocument
from mss.db import utcnow
from mss.directory.models import Patient
from mss.policy.consent import (
    NOT_FOUND,
    DmpAction,
    DocumentFacts,
    can_see,
    decide_dmp_action,
    decide_new_version,
    decide_unique_id,
)
from mss.policy.decision import Decision
from mss.policy.dmp_filing import TargetFacts


@dataclass
class DocumentDraft:
    """A document about to be filed, with the metadata the record keeps."""

    content: bytes
    mime_type: str
    title: str = ""
    unique_id: str = ""  # empty: a new urn:uuid is given
    entry_uuid: str = ""
    type_code: str = ""
    type_system: str = ""
    type_label: str = ""
    class_code: str = ""
    class_system: str = ""
    class_label: str = ""
    author_id_nat: str | None = None
    author_name: str = ""
    author_institution: str = ""
    author_institution_id: str | None = None
    creation_time: dt.datetime | None = None
    masked_from_professionals: bool = False
    invisible_to_patient: bool = False
    invisible_to_legal_representatives: bool = False
    pdf: bytes | None = None
    source: str = "mss"
    source_message_id: str = ""
    stored_message_id: int | None = None


def document_facts(document: DmpDocument) -> DocumentFacts:
    return DocumentFacts(
        masked_from_professionals=document.masked_from_professionals,
        invisible_to_patient=document.invisible_to_patient,
        invisible_to_legal_representatives=document.invisible_to_legal_representatives,
        author_id_nat=document.author_id_nat,
        author_institution=document.author_institution_id,
        status=document.status,
    )


def target_facts(document: DmpDocument | None) -> TargetFacts | None:
    if document is None:
        return None
    return TargetFacts(document.status, document.author_id_nat, document.author_institution_id)


async def decide(
    session: AsyncSession,
    viewer: Viewer,
    patient: Patient,
    action: DmpAction,
    document: DmpDocument | None = None,
) -> Decision:
    """The consent decision for this viewer; a refusal is audited and raised."""
    facts = await viewer.facts(session, patient)
    consent = await consent_facts(session, patient)
    decision = decide_dmp_action(
        facts, consent, action, document_facts(document) if document is not None else None
    )
    if not decision.allowed:
        # A refused document action is logged without naming the document (it may be hidden).
        await audit(
            session,
            "document_access_refused",
            viewer,
            patient,
            attempted=action.value,
            refusal=decision.reason,
        )
        raise DmpRefused(decision)
    if decision.break_glass:
        await record_emergency_access(session, viewer, patient)
    return decision


async def find_document(
    session: AsyncSession, patient: Patient, document_id: int
) -> DmpDocument | None:
    document = await session.get(DmpDocument, document_id)
    return document if document is not None and document.patient_id == patient.id else None


async def find_by_unique_id(
    session: AsyncSession, patient: Patient, unique_id: str
) -> DmpDocument | None:
    """The document with this uniqueId in the patient's record (UUID roots compare
    case-insensitively)."""
    found = (
        await session.scalars(
            select(DmpDocument).where(
                DmpDocument.patient_id == patient.id, DmpDocument.unique_id == unique_id
            )
        )
    ).first()
    if found is None and unique_id != unique_id.lower():
        found = (
            await session.scalars(
                select(DmpDocument).where(
                    DmpDocument.patient_id == patient.id, DmpDocument.unique_id == unique_id.lower()
                )
            )
        ).first()
    return found


async def list_documents_for(
    session: AsyncSession, viewer: Viewer, patient: Patient, *, include_replaced: bool = False
) -> list[DmpDocument]:
    """The documents ``viewer`` may see, newest first (replaced versions only when asked)."""
    await decide(session, viewer, patient, DmpAction.LIST)
    statuses = (CURRENT, REPLACED) if include_replaced else (CURRENT,)
    rows = (
        await session.scalars(
            select(DmpDocument)
            .where(DmpDocument.patient_id == patient.id, DmpDocument.status.in_(statuses))
            .order_by(DmpDocument.creation_time.desc(), DmpDocument.id.desc())
        )
    ).all()
    facts = await viewer.facts(session, patient)
    consent = await consent_facts(session, patient)
    visible = [d for d in rows if can_see(facts, consent, document_facts(d))]
    await audit(
        session,
        "document_list",
        viewer,
        patient,
        count=len(visible),
        reason=viewer.break_glass_reason or None,
    )
    return visible


async def get_document(
    session: AsyncSession,
    viewer: Viewer,
    patient: Patient,
    document_id: int,
    *,
    rendition: str = "original",
) -> tuple[DmpDocument, bytes]:
    """One document and its bytes (``rendition`` "original" or "pdf"); 404 when hidden or absent."""
    document = await find_document(session, patient, document_id)
    if document is None:
        await decide(session, viewer, patient, DmpAction.LIST)  # no record / not allowed at all
        raise DmpRefused(NOT_FOUND)
    await decide(session, viewer, patient, DmpAction.READ, document)
    column = DmpDocument.pdf if rendition == "pdf" else DmpDocument.content
    data = (await session.execute(select(column).where(DmpDocument.id == document.id))).scalar_one()
    if data is None:
        raise DmpRefused(NOT_FOUND)
    await audit(
        session,
        "document_read",
        viewer,
        patient,
        document,
        rendition=rendition,
        title=document.title,
    )
    return document, bytes(data)


async def _change(
    session: AsyncSession, viewer: Viewer, patient: Patient, document_id: int, action: DmpAction
) -> DmpDocument:
    document = await find_document(session, patient, document_id)
    if document is None:
        await decide(session, viewer, patient, DmpAction.LIST)
        raise DmpRefused(NOT_FOUND)
    await decide(session, viewer, patient, action, document)
    return document


async def mask_document(
    session: AsyncSession, viewer: Viewer, patient: Patient, document_id: int, masked: bool = True
) -> DmpDocument:
    """MASQUE_PS on (or off): hide the document from professionals but the médecin traitant."""
    action = DmpAction.MASK if masked else DmpAction.UNMASK
    document = await _change(session, viewer, patient, document_id, action)
    document.masked_from_professionals = masked
    await session.flush()
    await audit(
        session, "document_masked" if masked else "document_unmasked", viewer, patient, document
    )
    return document


async def unmask_document(
    session: AsyncSession, viewer: Viewer, patient: Patient, document_id: int
) -> DmpDocument:
    return await mask_document(session, viewer, patient, document_id, masked=False)


async def reveal_to_patient(
    session: AsyncSession, viewer: Viewer, patient: Patient, document_id: int
) -> DmpDocument:
    """A professional makes an INVISIBLE_PATIENT document visible to the patient."""
    document = await _change(session, viewer, patient, document_id, DmpAction.REVEAL)
    document.invisible_to_patient = False
    await session.flush()
    await release_withheld_events(session, patient, document)
    await audit(session, "document_revealed", viewer, patient, document)
    return document


async def delete_document(
    session: AsyncSession, viewer: Viewer, patient: Patient, document_id: int
) -> DmpDocument:
    """Mark a document deleted (its author, its institution, or the patient for their own)."""
    document = await _change(session, viewer, patient, document_id, DmpAction.DELETE)
    await mark_deleted(session, document)
    await audit(session, "document_deleted", viewer, patient, document)
    return document


def _new_row(
    patient: Patient, draft: DocumentDraft, version: int, replaces: int | None
) -> DmpDocument:
    return DmpDocument(
        patient_id=patient.id,
        unique_id=draft.unique_id or f"urn:uuid:{uuid.uuid4()}",
        entry_uuid=draft.entry_uuid,
        version=version,
        replaces_id=replaces,
        status=CURRENT,
        type_code=draft.type_code,
        type_system=draft.type_system,
        type_label=draft.type_label,
        class_code=draft.class_code,
        class_system=draft.class_system,
        class_label=draft.class_label,
        title=draft.title,
        author_id_nat=draft.author_id_nat,
        author_name=draft.author_name,
        author_institution=draft.author_institution,
        author_institution_id=draft.author_institution_id,
        creation_time=draft.creation_time or utcnow(),
        masked_from_professionals=draft.masked_from_professionals,
        invisible_to_patient=draft.invisible_to_patient,
        invisible_to_legal_representatives=draft.invisible_to_legal_representatives,
        mime_type=draft.mime_type,
        size=len(draft.content),
        sha1=hashlib.sha1(draft.content).hexdigest(),
        sha256=hashlib.sha256(draft.content).hexdigest(),
        content=draft.content,
        pdf=draft.pdf,
        has_pdf=draft.pdf is not None,
        source=draft.source,
        source_message_id=draft.source_message_id,
        stored_message_id=draft.stored_message_id,
        filed_at=utcnow(),
        status_changed_at=utcnow(),
    )


async def insert_document(
    session: AsyncSession,
    patient: Patient,
    draft: DocumentDraft,
    replaces: DmpDocument | None = None,
) -> DmpDocument:
    """Write a new document (or a new version of ``replaces``, which becomes replaced). No
    checks."""
    if replaces is not None:
        replaces.status, replaces.status_changed_at = REPLACED, utcnow()
    row = _new_row(
        patient,
        draft,
        replaces.version + 1 if replaces is not None else 1,
        replaces.id if replaces is not None else None,
    )
    session.add(row)
    await session.flush()
    return row


async def mark_deleted(session: AsyncSession, document: DmpDocument) -> None:
    document.status, document.status_changed_at = DELETED, utcnow()
    await session.flush()


async def deposit_document(
    session: AsyncSession,
    viewer: Viewer,
    patient: Patient,
    draft: DocumentDraft,
    replaces_id: int | None = None,
) -> DmpDocument:
    """A professional (or the patient) adds a document, or a new version of one they may replace."""
    previous = None
    if replaces_id is not None:
        previous = await _change(session, viewer, patient, replaces_id, DmpAction.REPLACE)
        latest = decide_new_version(previous.status)
        if not latest:
            raise DmpRefused(latest)
    else:
        await decide(session, viewer, patient, DmpAction.DEPOSIT)
    if draft.unique_id:
        held = await find_by_unique_id(session, patient, draft.unique_id) is not None
        new_id = decide_unique_id(draft.unique_id, held)
        if not new_id:
            raise DmpRefused(new_id)
    document = await insert_document(session, patient, draft, previous)
    await audit(
        session,
        "document_replaced" if previous is not None else "document_filed",
        viewer,
        patient,
        document,
        title=document.title,
    )
    return document


async def add_patient_document(
    session: AsyncSession,
    viewer: Viewer,
    patient: Patient,
    *,
    content: bytes,
    mime_type: str,
    title: str,
    type_code: str = "",
    type_label: str = "",
    source_message_id: str = "",
    stored_message_id: int | None = None,
) -> DmpDocument:
    """The patient (or a guardian) adds a document of their own, or an attachment of a message."""
    draft = DocumentDraft(
        content=content,
        mime_type=mime_type,
        title=title,
        type_code=type_code,
        type_label=type_label,
        author_name=viewer.name,
        source="portal",
        source_message_id=source_message_id,
        stored_message_id=stored_message_id,
        pdf=content if mime_type == "application/pdf" else None,
    )
    return await deposit_document(session, viewer, patient, draft)
