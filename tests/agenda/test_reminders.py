"""Reminders: one notification per configured delay before the appointment, never with medical
content."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from mss.agenda import store
from mss.agenda.reminders import reminder_times
from mss.db import utcnow
from mss.jobs import Job
from mss.notify import NOTICES, read_outbox
from tests.agenda.conftest import INS, PATIENT_PHONE, AgendaHub


async def _make_due(hub: AgendaHub, kind: str) -> None:
    """Time passes: the pending jobs of ``kind`` become due now."""
    async with hub.db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.kind == kind, Job.state == "pending")
            .values(run_after=utcnow() - dt.timedelta(seconds=1))
        )


def _texts(hub: AgendaHub, sentence: str) -> list[str]:
    return [
        r["text"]
        for r in read_outbox(hub.settings)
        if r["to"] == PATIENT_PHONE and sentence in r["text"]
    ]


def test_reminder_times_skip_the_past() -> None:
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    start = now + dt.timedelta(hours=10)
    assert reminder_times(start, [48, 2], now) == [(2, start - dt.timedelta(hours=2))]
    assert reminder_times(now + dt.timedelta(days=3), [2, 48, 0], now) == [
        (48, now + dt.timedelta(days=1)),
        (2, now + dt.timedelta(days=3, hours=-2)),
    ]


async def test_each_delay_notifies_once_without_medical_content(agenda_hub: AgendaHub) -> None:
    await agenda_hub.convoke(agenda_hub.row())
    jobs = await agenda_hub.jobs("agenda.reminder")
    [appointment] = await agenda_hub.appointments()
    assert {j.run_after for j in jobs} == {
        appointment.starts_at - dt.timedelta(hours=h) for h in (48, 2)
    }
    await _make_due(agenda_hub, "agenda.reminder")
    await agenda_hub.drain()
    sentence = NOTICES["appointment_reminder"].sentence
    texts = _texts(agenda_hub, sentence)
    assert len(texts) == 2
    assert all("Cardiologie" not in t and "CHU" not in t and "/agenda" in t for t in texts)
    [appointment] = await agenda_hub.appointments()
    assert sorted(appointment.reminders_sent) == ["0:2", "0:48"]
    from mss.agenda.reminders import send_reminder
    from mss.jobs import JobContext

    for job in jobs:  # a job that runs again (crash before its bookkeeping) notifies nobody twice
        await send_reminder(
            JobContext(agenda_hub.db, job.id, 2, agenda_hub.services), dict(job.payload)
        )
    await agenda_hub.drain()
    assert len(_texts(agenda_hub, sentence)) == 2


async def test_moved_and_cancelled_appointments(agenda_hub: AgendaHub) -> None:
    await agenda_hub.convoke(agenda_hub.row())
    moved = agenda_hub.row().start + dt.timedelta(days=2)
    await agenda_hub.convoke(
        agenda_hub.row(sequence=1, start=moved, end=moved + dt.timedelta(hours=1))
    )
    await _make_due(agenda_hub, "agenda.reminder")
    await agenda_hub.drain()
    sentence = NOTICES["appointment_reminder"].sentence
    assert len(_texts(agenda_hub, sentence)) == 2  # the new version's two, not the old version's
    await agenda_hub.convoke(agenda_hub.row(uid="rdv-2@chu.example"))
    await agenda_hub.convoke(agenda_hub.row(uid="rdv-2@chu.example", sequence=1, cancel=True))
    await _make_due(agenda_hub, "agenda.reminder")
    await agenda_hub.drain()
    assert len(_texts(agenda_hub, sentence)) == 2


async def test_configured_delays_and_the_patients_own_appointment(agenda_hub: AgendaHub) -> None:
    agenda_hub.settings.agenda.reminder_hours = [24]
    now = utcnow()
    async with agenda_hub.db.write() as session:
        await store.add_own_appointment(
            session,
            agenda_hub.settings,
            agenda_hub.ids[INS],
            starts_at=now + dt.timedelta(days=3),
            ends_at=now + dt.timedelta(days=3, hours=1),
            summary="Dentiste",
            now=now,
        )
    [job] = await agenda_hub.jobs("agenda.reminder")
    assert job.payload["hours"] == 24
    await _make_due(agenda_hub, "agenda.reminder")
    await agenda_hub.drain()
    texts = _texts(agenda_hub, NOTICES["appointment_reminder"].sentence)
    assert len(texts) == 1 and "Dentiste" not in texts[0]


async def test_health_reminder_on_its_date(agenda_hub: AgendaHub) -> None:
    async with agenda_hub.db.write() as session:
        await store.add_health_reminder(
            session,
            agenda_hub.ids[INS],
            kind="vaccination",
            label="Rappel DTPolio",
            due_on=utcnow().date() + dt.timedelta(days=30),
        )
        done = await store.add_health_reminder(
            session,
            agenda_hub.ids[INS],
            kind="screening",
            label="Mammographie",
            due_on=utcnow().date(),
        )
    async with agenda_hub.db.write() as session:
        assert await store.set_reminder_done(session, agenda_hub.ids[INS], done.id)
    await agenda_hub.drain()
    sentence = NOTICES["health_reminder"].sentence
    assert _texts(agenda_hub, sentence) == []  # not due yet, and the done one is never sent
    await _make_due(agenda_hub, "agenda.health_reminder")
    await agenda_hub.drain()
    texts = _texts(agenda_hub, sentence)
    assert len(texts) == 1 and "DTPolio" not in texts[0]
