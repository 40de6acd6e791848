"""From a delivered convocation to the patient's agenda.

Delivery enqueues, inside its transaction, an ``agenda.convocation`` job for
a patient mailbox receiving a ``text/calendar`` part (the follow-up the agenda
registers, ``mss.agenda.register_follow_ups``). The job reads the calendar, asks
``mss.policy.agenda`` what it may do, and in one transaction creates,
updates or cancels the appointment, schedules the reminders, notifies the
patient once (no medical content; ``mss.policy.notices``: the agenda changed,
or else a new message arrived) and records a ``ConvocationReceipt`` so a
rerun changes nothing. A broken or refused calendar part leaves the message
delivered, creates nothing and sends the sender a DSN with the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.agenda.ical import CalendarError
from mss.agenda.itip import Invitation, read_invitation
from mss.agenda.models import Appointment, ConvocationReceipt
from mss.agenda.reminders import schedule_reminders
from mss.audit import record, recording_in_bulk
from mss.config import Settings
from mss.db import insert_ids, pairs_in, pairs_values, utcnow
from mss.directory.facts import PatientContact, mailbox_facts
from mss.directory.models import Mailbox, Patient
from mss.jobs import JobContext, PermanentFailure, enqueue, enqueuing_in_bulk
from mss.mailbox.models import StoredMessage
from mss.mailbox.structure import decoded_body, leaves
from mss.notify import MESSAGES_LINK, notify_patient
from mss.policy import MailboxFacts
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


def calendar_parts(parts: dict[str, Any]) -> list[dict[str, Any]]:
    """The text/calendar leaves of a stored message's offset tree (``mss.mailbox.structure``).

    Inside multipart/signed, multipart/mixed and attached messages too; the tree was
    computed at delivery, so the message is not parsed again.
    """
    return [leaf for leaf in leaves(parts) if leaf.get("type") == "text/calendar"]


def calendar_of(raw: bytes, parts: dict[str, Any]) -> bytes:
    """The one calendar part of a stored message (identical copies count once), or CalendarError."""
    found: list[bytes] = []
    for part in calendar_parts(parts):
        try:
            payload = decoded_body(raw, part)
        except ValueError:
            raise CalendarError(
                "the text/calendar part cannot be decoded",
                "la partie text/calendar ne peut pas être décodée",
            ) from None
        charset = part.get("charset") or "utf-8"
        if charset not in ("utf-8", "utf8", "us-ascii"):
            raise CalendarError(
                f"the text/calendar part is in {charset}; iCalendar is UTF-8",
                f"la partie text/calendar est en {charset} ; iCalendar est en UTF-8",
            )
        if payload not in found:
            found.append(payload)
    if not found:
        raise CalendarError(
            "the message has no text/calendar part", "le message n'a pas de partie text/calendar"
        )
    if len(found) > 1:
        raise CalendarError(
            "the message has several different text/calendar parts",
            "le message contient plusieurs parties text/calendar différentes",
        )
    return found[0]


async def read_convocation(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler: apply one delivered calendar part to one patient's agenda (idempotent)."""
    await read_convocations(ctx, [payload])


async def read_convocations(ctx: JobContext, payloads: list[dict[str, Any]]) -> None:
    """Batch job handler: the same for several convocations, in queue order, in one transaction."""
    settings = ctx.services.settings
    async with ctx.db.write() as session:
        outcomes = await apply_convocations(
            session, settings, [(p["message_id"], p["mailbox_id"]) for p in payloads]
        )
    if any(outcome != "done-before" for outcome in outcomes):
        ctx.services.jobs.wake()


@dataclass(frozen=True)
class _Delivered:
    """What the job reads of one delivered convocation: the message, the patient's mailbox, the
    patient."""

    message_id: int
    raw: bytes
    parts: dict[str, Any]
    from_address: str
    signature_status: str
    signer_address: str | None
    message_id_header: str
    mailbox_id: int
    mailbox_address: str
    patient: PatientContact
    done: str | None  # the receipt's outcome when the job already ran


_messages, _mailboxes, _patients = (
    StoredMessage.__table__.c,
    Mailbox.__table__.c,
    Patient.__table__.c,
)
_receipts, _appointments = ConvocationReceipt.__table__.c, Appointment.__table__.c
# one statement for a whole batch: the job runs once per convocation, on the delivery's hot path
_DELIVERED = select(
    _messages.id,
    _messages.raw,
    _messages.bodystructure,
    _messages.from_address,
    _messages.signature_status,
    _messages.signer_address,
    _messages.message_id_header,
    _mailboxes.id.label("mailbox_id"),
    _mailboxes.address,
    _patients.id.label("patient_id"),
    _patients.email,
    _patients.phone,
    _receipts.outcome,
).select_from(
    StoredMessage.__table__.join(Mailbox.__table__, pairs_in(_messages.id, _mailboxes.id, "pairs"))
    .join(Patient.__table__, _patients.id == _mailboxes.patient_id)
    .outerjoin(
        ConvocationReceipt.__table__,
        (_receipts.message_id == _messages.id) & (_receipts.mailbox_id == _mailboxes.id),
    )
)
_EXISTING = select(Appointment).where(pairs_in(_appointments.patient_id, _appointments.uid, "keys"))


async def _delivered(
    session: AsyncSession, pairs: list[tuple[int, int]]
) -> dict[tuple[int, int], _Delivered]:
    """The delivered convocations of ``pairs`` (message id, mailbox id) that still exist."""
    rows = (await session.execute(_DELIVERED, pairs_values("pairs", pairs))).all()
    return {
        (row.id, row.mailbox_id): _Delivered(
            row.id,
            bytes(row.raw),
            row.bodystructure["parts"],
            row.from_address,
            row.signature_status,
            row.signer_address,
            row.message_id_header,
            row.mailbox_id,
            row.address,
            PatientContact(row.patient_id, row.email, row.phone),
            row.outcome,
        )
        for row in rows
    }


async def apply_convocation(
    session: AsyncSession,
    settings: Settings,
    message_id: int,
    mailbox_id: int,
    now: dt.datetime | None = None,
) -> str:
    """Create, update or cancel the appointment a stored convocation describes; the outcome's
    name."""
    (outcome,) = await apply_convocations(session, settings, [(message_id, mailbox_id)], now)
    return outcome


@dataclass
class _Change:
    """One convocation's effect, written once the batch's appointments have their ids."""

    stored: _Delivered
    outcome: str
    reason: str
    appointment: Appointment | None = None
    reminded: tuple[int, dt.datetime] | None = None  # (sequence, start) of a version to remind
    created: bool = False  # the appointment is new: inserted with the batch's others


async def apply_convocations(
    session: AsyncSession,
    settings: Settings,
    pairs: list[tuple[int, int]],
    now: dt.datetime | None = None,
) -> list[str]:
    """``apply_convocation`` for each (message id, mailbox id), in order, with a handful of
    statements.

    The result is what applying them one after the other gives: each sees the appointments
    the earlier ones created, moved or cancelled. The delivered messages, the senders and
    the appointments already stored are read once for the batch; the new appointments,
    the reminders, notices, audit events and receipts are written together at its end.
    """
    found = await _delivered(session, pairs)
    missing = [pair for pair in pairs if pair not in found]
    if missing:
        message_id, mailbox_id = missing[0]
        raise PermanentFailure(f"message {message_id} or patient mailbox {mailbox_id} is gone")
    now = now or utcnow()
    todo = [found[pair] for pair in pairs if found[pair].done is None]
    invitations = {stored.message_id: _invitation(stored) for stored in todo}
    keys = sorted(
        {
            (stored.patient.id, invitation.uid)
            for stored in todo
            if isinstance(invitation := invitations[stored.message_id], Invitation)
        }
    )
    existing: dict[tuple[int, str], Appointment] = {}
    if keys:
        appointments = await session.scalars(_EXISTING, pairs_values("keys", keys))
        existing = {(a.patient_id, a.uid): a for a in appointments}
    senders: dict[str, MailboxFacts | None] = {}
    changes: list[_Change] = []
    async with enqueuing_in_bulk(session), recording_in_bulk(session):
        for stored in todo:
            invitation = invitations[stored.message_id]
            if stored.from_address not in senders:
                senders[stored.from_address] = await _sender_facts(session, stored.from_address)
            changes.append(
                _apply(session, stored, invitation, senders[stored.from_address], existing, now)
            )
        await _insert_created(session, [c.appointment for c in changes if c.created])
        for change in changes:
            if change.reminded is not None and change.appointment is not None:
                schedule_reminders(
                    session, settings, change.appointment.id, *change.reminded, now=now
                )
    if changes:
        await session.execute(
            insert(ConvocationReceipt.__table__),
            [
                {
                    "message_id": c.stored.message_id,
                    "mailbox_id": c.stored.mailbox_id,
                    "outcome": c.outcome,
                    "reason": c.reason,
                    "appointment_id": c.appointment.id if c.appointment is not None else None,
                    "processed_at": now,
                }
                for c in changes
            ],
        )
    outcomes = {(c.stored.message_id, c.stored.mailbox_id): c.outcome for c in changes}
    return [outcomes.get(pair, "done-before") for pair in pairs]


async def _sender_facts(session: AsyncSession, address: str) -> MailboxFacts | None:
    return await mailbox_facts(session, address)


def _invitation(stored: _Delivered) -> Invitation | CalendarError | None:
    """The convocation's invitation, the reason it cannot be read, or None without a calendar
    part."""
    if not calendar_parts(stored.parts):
        return None
    try:
        return read_invitation(calendar_of(stored.raw, stored.parts))
    except CalendarError as error:
        return error


def _apply(
    session: AsyncSession,
    stored: _Delivered,
    invitation: Invitation | CalendarError | None,
    sender: MailboxFacts | None,
    existing: dict[tuple[int, str], Appointment],
    now: dt.datetime,
) -> _Change:
    """The agenda change, the notice, the audit event and the jobs of one convocation."""
    patient = stored.patient
    if invitation is None:
        _notify(session, patient, AgendaAction.UNCHANGED)
        return _Change(stored, "unchanged", "no text/calendar part")
    if isinstance(invitation, CalendarError):
        return _refused(
            session, stored, refuse(550, "5.6.0", invitation.reason, invitation.reason_fr)
        )
    allowed = decide_convocation(
        ConvocationFacts(
            sender=stored.from_address,
            sender_kind=sender.kind if sender is not None else None,
            signature_status=stored.signature_status,
            signer_address=stored.signer_address,
            organizer=invitation.organizer,
            attendees=invitation.attendees,
            patient_address=stored.mailbox_address,
        )
    )
    if not allowed:
        return _refused(session, stored, allowed)
    key = (patient.id, invitation.uid)
    appointment = existing.get(key)
    change = decide_agenda_change(
        _facts(appointment), invitation.method, invitation.sequence, invitation.organizer
    )
    if not change.decision:
        return _refused(session, stored, change.decision)
    reminded, created = None, False
    if change.action in (AgendaAction.CREATE, AgendaAction.UPDATE):
        created = appointment is None
        appointment = existing[key] = _write(appointment, invitation, stored, now)
        reminded = (appointment.sequence, appointment.starts_at)
    elif change.action is AgendaAction.CANCEL and appointment is not None:
        appointment.status, appointment.sequence, appointment.updated_at = (
            "cancelled",
            invitation.sequence,
            now,
        )
        appointment.message_id_header = stored.message_id_header or appointment.message_id_header
    changed = change.action is not AgendaAction.UNCHANGED and appointment is not None
    _notify(session, patient, change.action if changed else AgendaAction.UNCHANGED)
    if changed:
        record(
            session,
            f"agenda.appointment_{change.action.value}",
            actor_kind="professional",
            actor=invitation.organizer,
            patient_id=patient.id,
            target=stored.mailbox_address,
            source="smtp",
            uid=invitation.uid,
            sequence=invitation.sequence,
            message_id=stored.message_id_header,
        )
    return _Change(stored, change.action.value, change.note, appointment, reminded, created)


async def _insert_created(session: AsyncSession, created: list[Appointment | None]) -> None:
    """Insert the batch's new appointments (built, not added to the session) with one statement;
    set their ids.

    An appointment created and then moved or cancelled in the same batch is inserted as it ended.
    """
    if not created:
        return
    table = Appointment.__table__
    columns = [column.key for column in table.columns if column.key != "id"]
    ids = await insert_ids(
        session, table, [{key: getattr(a, key) for key in columns} for a in created]
    )
    for appointment, appointment_id in zip(created, ids, strict=True):
        assert appointment is not None
        appointment.id = appointment_id


def _facts(existing: Appointment | None) -> AppointmentFacts | None:
    if existing is None:
        return None
    return AppointmentFacts(
        existing.origin,
        existing.organizer,
        existing.sequence,
        existing.status == "cancelled",
        existing.starts_at,
        existing.ends_at,
    )


def _write(
    existing: Appointment | None, invitation: Invitation, stored: _Delivered, now: dt.datetime
) -> Appointment:
    appointment = existing or Appointment(
        patient_id=stored.patient.id,
        uid=invitation.uid,
        origin="convocation",
        created_at=now,
        reminders_sent=[],
    )
    assert invitation.start is not None and invitation.end is not None
    appointment.sequence, appointment.status, appointment.response = (
        invitation.sequence,
        "confirmed",
        "needs-action",
    )
    appointment.starts_at, appointment.ends_at, appointment.tzid = (
        invitation.start,
        invitation.end,
        invitation.tzid,
    )
    appointment.summary, appointment.location = invitation.summary, invitation.location
    appointment.description = invitation.description
    appointment.organizer, appointment.organizer_name = (
        invitation.organizer,
        invitation.organizer_name,
    )
    appointment.attendee, appointment.updated_at, appointment.answered_at = (
        stored.mailbox_address,
        now,
        None,
    )
    appointment.message_id_header = stored.message_id_header
    return appointment


def _notify(session: AsyncSession, patient: PatientContact, action: AgendaAction | None) -> None:
    """The patient's one notice for this delivered convocation (mss.policy.notices)."""
    notice = decide_convocation_notice(action)
    notify_patient(
        session, patient, notice, AGENDA_LINK if notice == "appointment" else MESSAGES_LINK
    )


def _refused(session: AsyncSession, stored: _Delivered, decision: Decision) -> _Change:
    """Report the refusal to the sender through the gateway's DSN job, tell the patient of the
    message."""
    failure = {
        "recipient": stored.mailbox_address,
        "code": decision.smtp_code,
        "status": decision.enhanced_status,
        "sentence": f"Message delivered, but its calendar was not used and no appointment was "
        f"made: {decision.sentence}",
        "sentence_fr": f"Message remis, mais son calendrier n'a pas été pris en compte et aucun "
        f"rendez-vous n'a été créé : {decision.sentence_fr}",
    }
    enqueue(
        session,
        DSN_JOB,
        {"message_id": stored.message_id, "mail_from": stored.from_address, "failures": [failure]},
    )
    _notify(session, stored.patient, None)
    record(
        session,
        "agenda.convocation_refused",
        actor_kind="system",
        actor="mss",
        patient_id=stored.patient.id,
        target=stored.mailbox_address,
        source="smtp",
        message_id=stored.message_id_header,
        reason=decision.sentence,
    )
    return _Change(stored, "refused", decision.sentence)
