"""Reminders as jobs: before each appointment (``[agenda] reminder_hours``) and on a health
reminder's date.

A reminder job carries the appointment's SEQUENCE: when the appointment
moves (a higher SEQUENCE), new jobs are scheduled and the old ones find a
different SEQUENCE and do nothing; a cancelled or declined appointment is
not reminded. Each sent reminder is written on the appointment, so a job
that runs twice notifies once. The notification says only that an
appointment is coming, never what it is about.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from mss.agenda.models import Appointment, HealthReminder
from mss.config import Settings
from mss.db import utcnow
from mss.directory.models import Patient, PatientState
from mss.jobs import JobContext, enqueue
from mss.notify import notify_patient

REMINDER_JOB = "agenda.reminder"
HEALTH_REMINDER_JOB = "agenda.health_reminder"
PARIS = ZoneInfo("Europe/Paris")
HEALTH_REMINDER_HOUR = dt.time(9, 0)


def reminder_times(
    starts_at: dt.datetime, hours: Sequence[int], now: dt.datetime
) -> list[tuple[int, dt.datetime]]:
    """(hours before, when) for each configured delay that is still in the future."""
    times = {h: starts_at - dt.timedelta(hours=h) for h in hours if h > 0}
    return sorted(((h, at) for h, at in times.items() if at > now), key=lambda pair: pair[1])


def schedule_reminders(
    session: AsyncSession,
    settings: Settings,
    appointment_id: int,
    sequence: int,
    starts_at: dt.datetime,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Queue the reminder jobs of one version (SEQUENCE) of an appointment; how many were queued."""
    times = reminder_times(starts_at, settings.agenda.reminder_hours, now or utcnow())
    for hours, at in times:
        enqueue(
            session,
            REMINDER_JOB,
            {"appointment_id": appointment_id, "sequence": sequence, "hours": hours},
            run_after=at,
            dedupe_key=f"{REMINDER_JOB}:{appointment_id}:{sequence}:{hours}",
        )
    return len(times)


async def send_reminder(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler: notify the patient of an appointment still on, once per version and delay."""
    async with ctx.db.write() as session:
        appointment = await session.get(Appointment, payload["appointment_id"])
        if (
            appointment is None
            or appointment.status != "confirmed"
            or appointment.response == "declined"
            or appointment.sequence != payload["sequence"]
        ):
            return
        key = f"{payload['sequence']}:{payload['hours']}"
        if key in (appointment.reminders_sent or []):
            return
        patient = await session.get(Patient, appointment.patient_id)
        if patient is None or patient.state is not PatientState.ACTIVE:
            return
        appointment.reminders_sent = [*(appointment.reminders_sent or []), key]
        notify_patient(session, patient, "appointment_reminder", "/agenda")


def health_reminder_time(due_on: dt.date) -> dt.datetime:
    """9:00 in Paris on the due date."""
    return dt.datetime.combine(due_on, HEALTH_REMINDER_HOUR, tzinfo=PARIS).astimezone(dt.UTC)


def schedule_health_reminder(session: AsyncSession, reminder: HealthReminder) -> None:
    """Queue the job that reminds the patient on the due date (at once if the date is today or
    past)."""
    enqueue(
        session,
        HEALTH_REMINDER_JOB,
        {"reminder_id": reminder.id},
        run_after=max(health_reminder_time(reminder.due_on), utcnow()),
        dedupe_key=f"{HEALTH_REMINDER_JOB}:{reminder.id}",
    )


async def send_health_reminder(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler: one notification for a vaccination or screening that is due and not done."""
    async with ctx.db.write() as session:
        reminder = await session.get(HealthReminder, payload["reminder_id"])
        if reminder is None or reminder.done or reminder.notified_at is not None:
            return
        patient = await session.get(Patient, reminder.patient_id)
        if patient is None or patient.state is not PatientState.ACTIVE:
            return
        reminder.notified_at = utcnow()
        notify_patient(session, patient, "health_reminder", "/agenda")
