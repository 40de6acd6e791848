"""The patient's answer to a convocation: an iTIP REPLY mailed to the organizer through the gateway.

The reply is an ordinary patient message (iMIP, RFC 6047): From the
patient's mailbox, To the organizer, In-Reply-To the convocation, with a
text part and a ``text/calendar; method=REPLY`` part. It goes through
``Gateway.submit``, the path every portal message takes, so the
professional-initiates rule and every other policy apply; the appointment
records the answer only once the gateway accepted the message.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import uuid
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import select

from mss.agenda.itip import build_reply
from mss.agenda.models import Appointment
from mss.agenda.store import event_data
from mss.audit import record
from mss.config import Settings
from mss.db import Database
from mss.directory.facts import mailbox_facts
from mss.directory.models import Mailbox, Patient
from mss.policy.agenda import AppointmentFacts, decide_appointment_reply
from mss.policy.decision import Decision, refuse
from mss.services import Services

ANSWERS = {"accepter": "ACCEPTED", "refuser": "DECLINED"}
SUBJECT_WORDS = {"ACCEPTED": "Accepté", "DECLINED": "Refusé"}
SENTENCES = {
    "ACCEPTED": "Je serai présent(e) à ce rendez-vous.",
    "DECLINED": "Je ne pourrai pas venir à ce rendez-vous.",
}
NOT_FOUND = refuse(
    550, "5.1.0", "No such appointment", "Ce rendez-vous n'existe pas dans votre agenda"
)


@dataclass(frozen=True)
class ReplySent:
    """The gateway's decision and, when accepted, the Message-ID of the reply."""

    decision: Decision
    message_id: str = ""


def reply_message(
    appointment: Appointment,
    sender: str,
    sender_name: str,
    partstat: str,
    *,
    domain: str,
    now: dt.datetime,
) -> tuple[bytes, str]:
    """The iMIP reply's exact bytes (CRLF) and its Message-ID."""
    event = event_data(appointment)
    event = type(event)(**{**event.__dict__, "attendee": sender, "attendee_name": sender_name})
    message = EmailMessage(policy=email.policy.SMTP)
    message_id = f"<{uuid.uuid4().hex}@{domain}>"
    message["From"] = email.utils.formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = appointment.organizer
    message["Subject"] = f"{SUBJECT_WORDS[partstat]} : {appointment.summary or 'rendez-vous'}"
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = message_id
    if appointment.message_id_header:
        message["In-Reply-To"] = appointment.message_id_header
        message["References"] = appointment.message_id_header
    message.set_content(SENTENCES[partstat] + "\n")
    message.add_alternative(
        build_reply(event, partstat, now), subtype="calendar", params={"method": "REPLY"}
    )
    return message.as_bytes(policy=email.policy.SMTP), message_id


async def answer_convocation(
    db: Database,
    settings: Settings,
    services: Services,
    *,
    patient: Patient,
    appointment_id: int,
    partstat: str,
    actor: str,
    actor_kind: str,
    now: dt.datetime,
) -> ReplySent:
    """Send the patient's ACCEPTED or DECLINED to the organizer and record it on the appointment."""
    from mss.smtp_gateway import Gateway  # the gateway's public API, loaded when a reply is sent

    async with db.read() as session:
        appointment = await session.get(Appointment, appointment_id)
        mailbox = (
            await session.scalars(select(Mailbox).where(Mailbox.patient_id == patient.id))
        ).first()
        if appointment is None or appointment.patient_id != patient.id or mailbox is None:
            return ReplySent(NOT_FOUND)
        sender = await mailbox_facts(session, mailbox.address)
    decision = decide_appointment_reply(
        AppointmentFacts(
            appointment.origin,
            appointment.organizer,
            appointment.sequence,
            appointment.status == "cancelled",
            appointment.starts_at,
            appointment.ends_at,
        ),
        now,
    )
    if not decision or sender is None:
        return ReplySent(decision)
    raw, message_id = reply_message(
        appointment,
        mailbox.address,
        patient.display_name,
        partstat,
        domain=settings.patient_domain,
        now=now,
    )
    gateway = Gateway(settings, db, services)
    accepted = await gateway.submit(sender, [appointment.organizer], raw, channel="portal")
    if not accepted.decision:
        return ReplySent(accepted.decision)
    async with db.write() as session:
        row = await session.get(Appointment, appointment_id)
        if row is not None:
            row.response, row.answered_at = partstat.lower(), now
        record(
            session,
            "agenda.appointment_answered",
            actor_kind=actor_kind,
            actor=actor,
            patient_id=patient.id,
            target=appointment.organizer,
            source="portal",
            uid=appointment.uid,
            answer=partstat,
            message_id=message_id,
        )
    return ReplySent(accepted.decision, message_id)
