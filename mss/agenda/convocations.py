"""From a delivered convocation to the patient's agenda.

Delivery calls ``follow_up_delivery`` for each local mailbox, inside its
transaction: a patient mailbox receiving a ``text/calendar`` part gets an
``agenda.convocation`` job. The job reads the calendar, asks
``mss.policy.agenda`` what it may do, and in one transaction creates,
updates or cancels the appointment, schedules the reminders, notifies the
patient once (no medical content; ``mss.policy.notices``: the agenda changed,
or else a new message arrived) and records a ``ConvocationReceipt`` so a
rerun changes nothing. A broken or refused calendar part leaves the message
delivered, creates nothing and sends the sender a DSN with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.agenda.ical import CalendarError
from mss.agenda.itip import Invitation, read_invitation
from mss.agenda.models import Appointment, ConvocationReceipt
from mss.agenda.reminders import schedule_reminders
from mss.audit import record
from mss.config import Settings
from mss.db import utcnow
from mss.directory.models import Mailbox, Patient
from mss.directory.store import find_mailbox
from mss.jobs import JobContext, PermanentFailure, enqueue
from mss.mailbox.models import StoredMessage
from mss.mailbox.structure import decoded_body, leaves
from mss.notify import MESSAGES_LINK, notify_patient
from mss.policy.agenda import (
    AgendaAction,
    AppointmentFacts,
    ConvocationFacts,
    decide_agenda_change,
    decide_convocation,
)
from mss.policy.decision import Decision, refuse
from mss.policy.notices import decide_convocation_notice

CONVOCATION_JOB = "agenda.convocation"
DSN_JOB = "smtp.dsn"  # the gateway's report job (mss.smtp_gateway.delivery.DSN_JOB)
AGENDA_LINK = "/agenda"
_CALENDAR_HEADER = re.compile(rb"^content-type:[ \t]*(?:\r?\n[ \t]+)?text/calendar", re.IGNORECASE | re.MULTILINE)


def calendar_parts(parts: dict[str, Any]) -> list[dict[str, Any]]:
    """The text/calendar leaves of a stored message's offset tree (``mss.mailbox.structure``).

    Inside multipart/signed, multipart/mixed and attached messages too; the tree was
    computed at delivery, so the message is not parsed again.
    """
    return [leaf for leaf in leaves(parts) if leaf.get("type") == "text/calendar"]


def may_carry_calendar(raw: bytes) -> bool:
    """A cheap look at the raw bytes (delivery parses headers only); the job reads the MIME tree."""
    return _CALENDAR_HEADER.search(raw) is not None


def follow_up_delivery(session: AsyncSession, raw: bytes, mailbox_id: int, is_patient: bool,
                       stored_message_id: int) -> int:
    """In the delivery transaction: queue the agenda job for a patient receiving a calendar part."""
    if not is_patient or not may_carry_calendar(raw):
        return 0
    enqueue(session, CONVOCATION_JOB, {"message_id": stored_message_id, "mailbox_id": mailbox_id},
            dedupe_key=f"{CONVOCATION_JOB}:{stored_message_id}:{mailbox_id}")
    return 1


def calendar_of(raw: bytes, parts: dict[str, Any]) -> bytes:
    """The one calendar part of a stored message (identical copies count once), or CalendarError."""
    found: list[bytes] = []
    for part in calendar_parts(parts):
        try:
            payload = decoded_body(raw, part)
        except ValueError:
            raise CalendarError("the text/calendar part cannot be decoded",
                                "la partie text/calendar ne peut pas être décodée") from None
        charset = part.get("charset") or "utf-8"
        if charset not in ("utf-8", "utf8", "us-ascii"):
            raise CalendarError(f"the text/calendar part is in {charset}; iCalendar is UTF-8",
                                f"la partie text/calendar est en {charset} ; iCalendar est en UTF-8")
        if payload not in found:
            found.append(payload)
    if not found:
        raise CalendarError("the message has no text/calendar part", "le message n'a pas de partie text/calendar")
    if len(found) > 1:
        raise CalendarError("the message has several different text/calendar parts",
                            "le message contient plusieurs parties text/calendar différentes")
    return found[0]


async def read_convocation(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler: apply one delivered calendar part to one patient's agenda (idempotent)."""
    settings: Settings = ctx.services["settings"]
    async with ctx.db.write() as session:
        outcome = await apply_convocation(session, settings, payload["message_id"], payload["mailbox_id"])
    runner = ctx.services.get("jobs")
    if outcome != "done-before" and runner is not None:
        runner.wake()


async def apply_convocation(session: AsyncSession, settings: Settings, message_id: int,
                            mailbox_id: int, now: dt.datetime | None = None) -> str:
    """Create, update or cancel the appointment a stored convocation describes; the outcome's name."""
    done = await session.scalar(select(ConvocationReceipt.outcome).where(
        ConvocationReceipt.message_id == message_id, ConvocationReceipt.mailbox_id == mailbox_id))
    if done is not None:
        return "done-before"
    stored = await session.get(StoredMessage, message_id)
    mailbox = await session.get(Mailbox, mailbox_id)
    if stored is None or mailbox is None or mailbox.patient_id is None:
        raise PermanentFailure(f"message {message_id} or patient mailbox {mailbox_id} is gone")
    patient = await session.get(Patient, mailbox.patient_id)
    assert patient is not None
    now = now or utcnow()
    raw, parts = bytes(stored.raw), stored.bodystructure["parts"]
    if not calendar_parts(parts):
        session.add(ConvocationReceipt(message_id=stored.id, mailbox_id=mailbox.id, outcome="unchanged",
                                       reason="no text/calendar part", processed_at=now))
        _notify(session, patient, AgendaAction.UNCHANGED)
        return "unchanged"
    try:
        invitation = read_invitation(calendar_of(raw, parts))
    except CalendarError as error:
        return _refused(session, stored, mailbox, patient, refuse(550, "5.6.0", error.reason, error.reason_fr))
    sender = await find_mailbox(session, stored.from_address)
    allowed = decide_convocation(ConvocationFacts(
        sender=stored.from_address, sender_kind=sender.kind if sender is not None else None,
        signature_status=stored.signature_status, signer_address=stored.signer_address,
        organizer=invitation.organizer, attendees=invitation.attendees, patient_address=mailbox.address))
    if not allowed:
        return _refused(session, stored, mailbox, patient, allowed)
    existing = (await session.scalars(select(Appointment).where(
        Appointment.patient_id == patient.id, Appointment.uid == invitation.uid))).first()
    change = decide_agenda_change(_facts(existing), invitation.method, invitation.sequence,
                                  invitation.organizer)
    if not change.decision:
        return _refused(session, stored, mailbox, patient, change.decision)
    appointment = existing
    if change.action in (AgendaAction.CREATE, AgendaAction.UPDATE):
        appointment = _write(session, existing, invitation, patient, mailbox, stored, now)
        await session.flush()
        schedule_reminders(session, settings, appointment, now)
    elif change.action is AgendaAction.CANCEL and existing is not None:
        existing.status, existing.sequence, existing.updated_at = "cancelled", invitation.sequence, now
        existing.message_id_header = stored.message_id_header or existing.message_id_header
    changed = change.action is not AgendaAction.UNCHANGED and appointment is not None
    _notify(session, patient, change.action if changed else AgendaAction.UNCHANGED)
    if changed:
        record(session, f"agenda.appointment_{change.action.value}", actor_kind="professional",
               actor=invitation.organizer, patient_id=patient.id, target=mailbox.address, source="smtp",
               uid=invitation.uid, sequence=invitation.sequence, message_id=stored.message_id_header)
    session.add(ConvocationReceipt(message_id=stored.id, mailbox_id=mailbox.id, outcome=change.action.value,
                                   reason=change.note, processed_at=now,
                                   appointment_id=appointment.id if appointment is not None else None))
    return change.action.value


def _facts(existing: Appointment | None) -> AppointmentFacts | None:
    if existing is None:
        return None
    return AppointmentFacts(existing.origin, existing.organizer, existing.sequence,
                            existing.status == "cancelled", existing.starts_at, existing.ends_at)


def _write(session: AsyncSession, existing: Appointment | None, invitation: Invitation, patient: Patient,
           mailbox: Mailbox, stored: StoredMessage, now: dt.datetime) -> Appointment:
    appointment = existing or Appointment(patient_id=patient.id, uid=invitation.uid, origin="convocation",
                                          created_at=now, reminders_sent=[])
    assert invitation.start is not None and invitation.end is not None
    appointment.sequence, appointment.status, appointment.response = invitation.sequence, "confirmed", \
        "needs-action"
    appointment.starts_at, appointment.ends_at, appointment.tzid = invitation.start, invitation.end, \
        invitation.tzid
    appointment.summary, appointment.location = invitation.summary, invitation.location
    appointment.description = invitation.description
    appointment.organizer, appointment.organizer_name = invitation.organizer, invitation.organizer_name
    appointment.attendee, appointment.updated_at, appointment.answered_at = mailbox.address, now, None
    appointment.message_id_header = stored.message_id_header
    if existing is None:
        session.add(appointment)
    return appointment


def _notify(session: AsyncSession, patient: Patient, action: AgendaAction | None) -> None:
    """The patient's one notice for this delivered convocation (mss.policy.notices)."""
    notice = decide_convocation_notice(action)
    notify_patient(session, patient, notice, AGENDA_LINK if notice == "appointment" else MESSAGES_LINK)


def _refused(session: AsyncSession, stored: StoredMessage, mailbox: Mailbox, patient: Patient,
             decision: Decision) -> str:
    """Record the refusal, report it to the sender through the gateway's DSN job, tell the patient of the message."""
    session.add(ConvocationReceipt(message_id=stored.id, mailbox_id=mailbox.id, outcome="refused",
                                   reason=decision.sentence))
    failure = {"recipient": mailbox.address, "code": decision.smtp_code, "status": decision.enhanced_status,
               "sentence": f"Message delivered, but its calendar was not used and no appointment was "
                           f"made: {decision.sentence}",
               "sentence_fr": f"Message remis, mais son calendrier n'a pas été pris en compte et aucun "
                              f"rendez-vous n'a été créé : {decision.sentence_fr}"}
    enqueue(session, DSN_JOB, {"message_id": stored.id, "mail_from": stored.from_address, "failures": [failure]})
    _notify(session, patient, None)
    record(session, "agenda.convocation_refused", actor_kind="system", actor="mss",
           patient_id=mailbox.patient_id, target=mailbox.address, source="smtp",
           message_id=stored.message_id_header, reason=decision.sentence)
    return "refused"
