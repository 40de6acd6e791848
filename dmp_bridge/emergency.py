"""Break-glass ("bris de glace"): log the emergency access, tell the patient and the médecin
traitant.

The access itself was allowed by the consent engine (a stated reason, no
prior opposition). Here it becomes an ``emergency_access`` event on the
patient's history (with the reason) and, at most once per professional
and patient every 12 hours, a notification to the patient (e-mail/SMS
job; for a minor, to the guardians instead: ``mss.policy.notice_recipients``)
and a message in the médecin traitant's mailbox (``dmp.notify_treating``
job), so a series of reads during one emergency is one alert.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import Viewer, audit
from mss.audit import AuditEvent
from mss.config import Settings
from mss.db import utcnow
from mss.directory.models import (
    Guardianship,
    Mailbox,
    MailboxKind,
    MailboxState,
    Patient,
    Professional,
)
from mss.jobs import JobContext, enqueue
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import INBOX, append, store_message
from mss.notify import notify_patient
from mss.policy.notice_recipients import decide_record_notice_recipients

NOTIFY_TREATING_JOB = "dmp.notify_treating"
ALERT_WINDOW = dt.timedelta(hours=12)
HISTORY_LINK = "/historique"


async def record_emergency_access(session: AsyncSession, viewer: Viewer, patient: Patient) -> None:
    """Log one break-glass access; alert the patient and the médecin traitant once per window."""
    since = utcnow() - ALERT_WINDOW
    earlier = (
        await session.scalars(
            select(AuditEvent.id)
            .where(
                AuditEvent.action == "emergency_access",
                AuditEvent.patient_id == patient.id,
                AuditEvent.actor == viewer.actor,
                AuditEvent.at >= since,
            )
            .limit(1)
        )
    ).first()
    await audit(session, "emergency_access", viewer, patient, reason=viewer.break_glass_reason)
    if earlier is not None:
        return
    guardians = (
        await session.scalars(
            select(Guardianship.guardian_id).where(Guardianship.minor_id == patient.id)
        )
    ).all()
    for recipient in decide_record_notice_recipients(patient.id, guardians):
        told = (
            patient
            if recipient.patient_id == patient.id
            else await session.get(Patient, recipient.patient_id)
        )
        if told is not None:
            notify_patient(
                session,
                told,
                "emergency_access_minor" if recipient.as_guardian else "emergency_access",
                HISTORY_LINK,
            )
    if patient.treating_professional_id is not None:
        enqueue(
            session,
            NOTIFY_TREATING_JOB,
            {
                "patient_id": patient.id,
                "professional_id": patient.treating_professional_id,
                "actor": viewer.actor,
                "actor_name": viewer.name,
                "reason": viewer.break_glass_reason,
                "at": utcnow().isoformat(),
            },
        )


def treating_notice(
    settings: Settings,
    *,
    to: str,
    patient: Patient,
    actor: str,
    actor_name: str,
    reason: str,
    at: dt.datetime,
    message_id: str,
) -> bytes:
    """The message the médecin traitant receives (the patient is named; no document is)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = f"Dossier médical partagé <ne-pas-repondre@{settings.domain}>"
    message["To"] = to
    message["Subject"] = f"Accès en urgence au dossier de {patient.display_name}"
    message["Date"] = email.utils.format_datetime(utcnow())
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    local = at.astimezone(ZoneInfo("Europe/Paris"))
    message.set_content(
        f"Votre patient(e) {patient.display_name} (INS {patient.ins}) a fait l'objet d'un accès en "
        f"urgence (bris de glace) à son dossier médical.\n\n"
        f"Professionnel : {actor_name} (idNat {actor})\nDate : {local:%d/%m/%Y %H:%M}\n"
        f"Motif déclaré : {reason}\n\nVous recevez ce message en tant que médecin traitant.\n"
    )
    return message.as_bytes()


async def notify_treating(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job: put the notice in the médecin traitant's personal mailbox (once, by Message-ID)."""
    settings = ctx.services.settings
    message_id = f"<dmp-emergency-{ctx.job_id}@{settings.hostname}>"
    async with ctx.db.write() as session:
        if (
            await session.scalars(
                select(StoredMessage.id).where(StoredMessage.message_id_header == message_id)
            )
        ).first() is not None:
            return
        patient = await session.get(Patient, payload["patient_id"])
        doctor = await session.get(Professional, payload["professional_id"])
        if patient is None or doctor is None:
            return
        mailbox = (
            await session.scalars(
                select(Mailbox)
                .where(
                    Mailbox.professional_id == doctor.id,
                    Mailbox.kind == MailboxKind.PER,
                    Mailbox.state == MailboxState.ACTIVE,
                )
                .order_by(Mailbox.id)
            )
        ).first()
        if mailbox is None:
            return
        raw = treating_notice(
            settings,
            to=mailbox.address,
            patient=patient,
            actor=payload["actor"],
            actor_name=payload["actor_name"],
            reason=payload["reason"] or "",
            at=dt.datetime.fromisoformat(payload["at"]),
            message_id=message_id,
        )
        stored = await store_message(session, raw)
        await append(session, mailbox.id, INBOX, stored)
