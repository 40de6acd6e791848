"""The agenda API the portal calls: list, add and remove the patient's own entries, export as .ics.

Every function takes the caller's session; writes join its transaction.
Entries a patient adds have ``origin='patient'``; convocations are changed
only by their organizer (``mss.agenda.convocations``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.agenda.itip import EventData, build_publish
from mss.agenda.models import Appointment, HealthReminder
from mss.agenda.reminders import schedule_health_reminder, schedule_reminders
from mss.config import Settings
from mss.errors import InvalidInput

REMINDER_KINDS = {"vaccination": "Vaccination", "screening": "Dépistage"}
MAX_TEXT = 255


@dataclass
class AgendaView:
    """What the agenda page shows."""

    upcoming: list[Appointment]
    past: list[Appointment]
    reminders: list[HealthReminder]


async def agenda_of(session: AsyncSession, patient_id: int, now: dt.datetime) -> AgendaView:
    """Upcoming appointments (soonest first), past ones (latest first), health reminders by date."""
    rows = list(
        (
            await session.scalars(
                select(Appointment)
                .where(Appointment.patient_id == patient_id)
                .order_by(Appointment.starts_at, Appointment.id)
            )
        ).all()
    )
    reminders = list(
        (
            await session.scalars(
                select(HealthReminder)
                .where(HealthReminder.patient_id == patient_id)
                .order_by(HealthReminder.done, HealthReminder.due_on)
            )
        ).all()
    )
    upcoming = [a for a in rows if a.ends_at > now]
    past = [a for a in reversed(rows) if a.ends_at <= now]
    return AgendaView(upcoming, past, reminders)


async def appointment_of(
    session: AsyncSession, patient_id: int, appointment_id: int
) -> Appointment | None:
    """One appointment of this patient (None for another patient's, so nothing leaks)."""
    found = await session.get(Appointment, appointment_id)
    return found if found is not None and found.patient_id == patient_id else None


def _text(value: str, what: str, *, required: bool = False) -> str:
    text = " ".join(value.split())
    if required and not text:
        raise InvalidInput(f"{what} est obligatoire")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what} dépasse {MAX_TEXT} caractères")
    return text


async def add_own_appointment(
    session: AsyncSession,
    settings: Settings,
    patient_id: int,
    *,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    summary: str,
    location: str = "",
    with_whom: str = "",
    now: dt.datetime,
) -> Appointment:
    """An appointment the patient enters (with its reminders)."""
    if ends_at <= starts_at:
        raise InvalidInput("l'heure de fin doit être après l'heure de début")
    appointment = Appointment(
        patient_id=patient_id,
        uid=f"{uuid.uuid4()}@{settings.patient_domain}",
        origin="patient",
        sequence=0,
        status="confirmed",
        response="accepted",
        starts_at=starts_at,
        ends_at=ends_at,
        summary=_text(summary, "L'objet du rendez-vous", required=True),
        location=_text(location, "Le lieu"),
        organizer_name=_text(with_whom, "Le nom du professionnel"),
        created_at=now,
        updated_at=now,
        reminders_sent=[],
    )
    session.add(appointment)
    await session.flush()
    schedule_reminders(
        session, settings, appointment.id, appointment.sequence, appointment.starts_at, now=now
    )
    return appointment


async def remove_own_appointment(
    session: AsyncSession, patient_id: int, appointment_id: int
) -> bool:
    """Delete an appointment the patient entered (convocations stay: the organizer cancels them)."""
    appointment = await appointment_of(session, patient_id, appointment_id)
    if appointment is None or appointment.origin != "patient":
        return False
    await session.delete(appointment)
    return True


async def add_health_reminder(
    session: AsyncSession,
    patient_id: int,
    *,
    kind: str,
    label: str,
    due_on: dt.date,
    note: str = "",
) -> HealthReminder:
    """A vaccination or screening to be reminded of on ``due_on``."""
    if kind not in REMINDER_KINDS:
        raise InvalidInput("choisissez vaccination ou dépistage")
    reminder = HealthReminder(
        patient_id=patient_id,
        kind=kind,
        label=_text(label, "Le nom", required=True),
        due_on=due_on,
        note=_text(note, "La note"),
        done=False,
    )
    session.add(reminder)
    await session.flush()
    schedule_health_reminder(session, reminder)
    return reminder


async def set_reminder_done(
    session: AsyncSession, patient_id: int, reminder_id: int, done: bool = True
) -> bool:
    reminder = await session.get(HealthReminder, reminder_id)
    if reminder is None or reminder.patient_id != patient_id:
        return False
    reminder.done = done
    return True


async def remove_health_reminder(session: AsyncSession, patient_id: int, reminder_id: int) -> bool:
    reminder = await session.get(HealthReminder, reminder_id)
    if reminder is None or reminder.patient_id != patient_id:
        return False
    await session.delete(reminder)
    return True


def event_data(appointment: Appointment) -> EventData:
    return EventData(
        uid=appointment.uid,
        sequence=appointment.sequence,
        start=appointment.starts_at,
        end=appointment.ends_at,
        summary=appointment.summary,
        location=appointment.location,
        description=appointment.description,
        organizer=appointment.organizer,
        organizer_name=appointment.organizer_name,
        attendee=appointment.attendee,
        tzid=appointment.tzid or "Europe/Paris",
    )


def appointment_ics(appointment: Appointment, now: dt.datetime) -> str:
    """The appointment as an .ics file (METHOD:PUBLISH) for the patient's calendar application."""
    return build_publish(event_data(appointment), now, cancelled=appointment.status == "cancelled")
