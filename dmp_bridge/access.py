"""Who is using a record (``Viewer``), the refusal they get, and the audit events they leave.

Every read and write of the DMP is an audit event on the patient's access
history. Events about a document the patient (or, for a minor, their
guardians) may not see are *withheld*: recorded without ``patient_id`` and
attached to the patient's history only when a professional reveals the
document (``release_withheld_events``), so the history never betrays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.models import DmpDocument
from mss.audit import AuditEvent, record
from mss.directory.models import Guardianship, Organisation, Patient, Professional
from mss.policy.consent import ViewerFacts, ViewerKind
from mss.policy.decision import Decision


class DmpRefused(Exception):
    """A consent decision refused the request; carries the status and both sentences."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.sentence)
        self.decision = decision


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: a patient, a guardian or a professional."""

    kind: ViewerKind
    actor: str  # what the audit log names: the INS of a patient, the idNat of a professional
    name: str
    patient_id: int | None = None  # the patient's own id (patient and guardian viewers)
    id_nat: str | None = None
    institution: str | None = None
    institution_name: str = ""
    break_glass_reason: str | None = None
    source: str = "portal"  # portal, api, mss

    @classmethod
    def for_patient(cls, patient: Patient, source: str = "portal") -> Viewer:
        return cls(
            ViewerKind.PATIENT,
            patient.ins,
            patient.display_name,
            patient_id=patient.id,
            source=source,
        )

    @classmethod
    def for_guardian(cls, guardian: Patient, source: str = "portal") -> Viewer:
        return cls(
            ViewerKind.GUARDIAN,
            guardian.ins,
            guardian.display_name,
            patient_id=guardian.id,
            source=source,
        )

    @classmethod
    def for_professional(
        cls,
        professional: Professional,
        organisation: Organisation | None = None,
        *,
        break_glass_reason: str | None = None,
        source: str = "api",
    ) -> Viewer:
        return cls(
            ViewerKind.PROFESSIONAL,
            professional.id_nat,
            professional.display_name,
            id_nat=professional.id_nat,
            institution=organisation.finess if organisation is not None else None,
            institution_name=organisation.name if organisation is not None else "",
            break_glass_reason=break_glass_reason,
            source=source,
        )

    @property
    def actor_kind(self) -> str:
        return self.kind.value

    async def facts(self, session: AsyncSession, patient: Patient) -> ViewerFacts:
        """The policy's view of this viewer for ``patient``'s record."""
        acts = True
        if self.kind is ViewerKind.PATIENT:
            acts = self.patient_id == patient.id
        elif self.kind is ViewerKind.GUARDIAN:
            acts = (
                await session.scalars(
                    select(Guardianship.id).where(
                        Guardianship.guardian_id == self.patient_id,
                        Guardianship.minor_id == patient.id,
                    )
                )
            ).first() is not None
        return ViewerFacts(self.kind, self.id_nat, self.institution, self.break_glass_reason, acts)


async def has_guardians(session: AsyncSession, patient_id: int) -> bool:
    return (
        await session.scalars(
            select(Guardianship.id).where(Guardianship.minor_id == patient_id).limit(1)
        )
    ).first() is not None


def document_target(document: DmpDocument) -> str:
    return f"dmp-document:{document.id}"


async def audit(
    session: AsyncSession,
    action: str,
    viewer: Viewer,
    patient: Patient,
    document: DmpDocument | None = None,
    **detail: Any,
) -> AuditEvent:
    """Record one access or change; withheld from the patient's history when the document is
    hidden."""
    patient_id: int | None = patient.id
    target = ""
    if document is not None:
        target = document_target(document)
        detail.setdefault("document_id", document.id)
        hidden = document.invisible_to_patient or (
            document.invisible_to_legal_representatives and await has_guardians(session, patient.id)
        )
        if hidden:
            patient_id = None
            detail["withheld_from_patient"] = patient.id
    return record(
        session,
        action,
        actor_kind=viewer.actor_kind,
        actor=viewer.actor,
        patient_id=patient_id,
        target=target,
        source=viewer.source,
        actor_name=viewer.name,
        **detail,
    )


async def release_withheld_events(
    session: AsyncSession, patient: Patient, document: DmpDocument
) -> None:
    """Attach a revealed document's withheld events to the patient's history."""
    if document.invisible_to_legal_representatives and await has_guardians(session, patient.id):
        return
    await session.execute(
        update(AuditEvent)
        .where(
            AuditEvent.patient_id.is_(None),
            AuditEvent.target == document_target(document),
            AuditEvent.action.startswith("document_"),
        )
        .values(patient_id=patient.id)
    )


async def release_to_new_holder(session: AsyncSession, patient: Patient) -> int:
    """Once no guardian acts for ``patient`` any more (their space was handed over to them):
    the history of the documents hidden from legal representatives joins the patient's own.
    Returns how many documents it concerned (those hidden from the patient stay withheld)."""
    documents = (
        await session.scalars(
            select(DmpDocument).where(
                DmpDocument.patient_id == patient.id,
                DmpDocument.invisible_to_legal_representatives.is_(True),
                DmpDocument.invisible_to_patient.is_(False),
            )
        )
    ).all()
    for document in documents:
        await release_withheld_events(session, patient, document)
    return len(documents)
