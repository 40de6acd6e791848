"""Retention of unused mailboxes, run as the hub's jobs with an injected clock.

A mailbox without a login for 11 months is warned once (a patient by e-mail, a
professional in their INBOX); at 12 months its messages are purged, with one audit
event, while another recipient's copy and the DMP stay; a login after the warning
starts the count again; a closed patient account is purged after its retention.
"""

from __future__ import annotations

import datetime as dt
import email
from collections.abc import Callable
from email.policy import default
from typing import Any

import pytest
from sqlalchemy import event, func, select

from dmp_bridge.models import DmpDocument
from mss.audit import AuditEvent
from mss.config import Settings
from mss.db import Database, utcnow
from mss.directory.activity import note_activity
from mss.directory.models import Mailbox, MailboxKind, Patient, PatientState
from mss.jobs import Job, JobRunner, enqueue
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.store import INBOX, append, ensure_folders, store_message
from mss.notify import NOTICES, read_outbox
from mss.notify import register_jobs as register_notify
from mss.policy.retention import RetentionFacts, RetentionRules, RetentionStep, decide_retention
from mss.retention import DAILY_JOB, register_jobs, schedule_daily
from mss.services import Services
from tests.portal.conftest import add_patient

DOCTOR = "jean.dupont@mss.localhost"
PATIENT_EMAIL = "hugo@example.org"
MEDICAL = "Compte rendu d'IRM"


class Calendar:
    """The jobs' clock: today plus the days a test moves it forward."""

    def __init__(self) -> None:
        self.start = utcnow()
        self.days = 0

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(days=self.days)


def _message(subject: str, to: str) -> bytes:
    return (
        f"From: {DOCTOR}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: "
        f"<{abs(hash(subject))}@mss.localhost>\r\n"
        f"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\n{MEDICAL}\r\n"
    ).encode()


async def _mailbox(db: Database, address: str, kind: MailboxKind = MailboxKind.PER) -> int:
    async with db.write() as session:
        mailbox = Mailbox(address=address, kind=kind, display_name="Dr Jean Dupont")
        session.add(mailbox)
        await session.flush()
        await ensure_folders(session, mailbox.id)
        return mailbox.id


async def _patient_mailbox(db: Database) -> tuple[Patient, int]:
    patient = await add_patient(
        db, "201751234564118", "Noël", "Hugo", email=PATIENT_EMAIL, phone=None
    )
    async with db.read() as session:
        mailbox_id = await session.scalar(
            select(Mailbox.id).where(Mailbox.patient_id == patient.id)
        )
    assert mailbox_id is not None
    return patient, mailbox_id


async def _deliver(db: Database, subject: str, *mailbox_ids: int) -> int:
    """One stored message filed in the INBOX of each mailbox (a message to several recipients)."""
    async with db.write() as session:
        message = await store_message(session, _message(subject, "x@mss.localhost"))
        for mailbox_id in mailbox_ids:
            await append(session, mailbox_id, INBOX, message)
        return message.id


async def _subjects(db: Database, mailbox_id: int) -> list[str]:
    """What the mailbox shows, every folder (what IMAP and the portal list)."""
    async with db.read() as session:
        rows = await session.execute(
            select(StoredMessage.subject)
            .join(FolderEntry)
            .join(Folder)
            .where(Folder.mailbox_id == mailbox_id)
            .order_by(FolderEntry.id)
        )
        return [row[0] for row in rows]


async def _stored(db: Database, message_id: int) -> bool:
    async with db.read() as session:
        return await session.get(StoredMessage, message_id) is not None


async def _events(db: Database, action: str) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            ).all()
        )


@pytest.fixture
def calendar() -> Calendar:
    return Calendar()


@pytest.fixture
def run_day(db: Database, settings: Settings, calendar: Calendar) -> Callable[[int], object]:
    """Move the clock to ``day`` (days from now) and run that day's retention pass and what it
    queues."""
    runner = JobRunner(db, services=Services(settings, clock=calendar.now))
    register_jobs(runner)
    register_notify(runner)

    async def run(day: int) -> None:
        calendar.days = day
        async with db.write() as session:
            enqueue(session, DAILY_JOB, {"once": True})
        await runner.drain()

    return run


async def test_a_patient_is_warned_once_at_eleven_months_then_purged_at_twelve(
    db: Database, settings: Settings, calendar: Calendar, run_day: Callable
) -> None:
    patient, mailbox = await _patient_mailbox(db)
    doctor = await _mailbox(db, DOCTOR)
    shared = await _deliver(db, "Résultats", mailbox, doctor)
    alone = await _deliver(db, "Convocation", mailbox)
    await note_activity(
        db, doctor, today=(calendar.start + dt.timedelta(days=300)).date()
    )  # the doctor logs in
    await run_day(334)
    assert read_outbox(settings) == [] and await _events(db, "mailbox.retention_warned") == []
    await run_day(335)
    await run_day(336)  # the next day's pass does not warn again
    (mail,) = read_outbox(settings)
    assert (mail["to"], mail["subject"]) == (PATIENT_EMAIL, NOTICES["retention_warning"].subject)
    assert NOTICES["retention_warning"].sentence in mail["text"] and MEDICAL not in mail["text"]
    (warned,) = await _events(db, "mailbox.retention_warned")
    assert warned.patient_id == patient.id
    await run_day(364)
    assert await _subjects(db, mailbox) == ["Résultats", "Convocation"]
    await run_day(365)
    assert await _subjects(db, mailbox) == []
    assert not await _stored(db, alone)
    assert await _subjects(db, doctor) == ["Résultats"] and await _stored(
        db, shared
    )  # the doctor's copy stays
    (purged,) = await _events(db, "mailbox.purged")
    assert purged.patient_id == patient.id and purged.source == "retention"
    assert (purged.detail["entries"], purged.detail["messages"], purged.detail["reason"]) == (
        2,
        1,
        "inactive",
    )
    assert MEDICAL not in str(purged.detail) and "Convocation" not in str(purged.detail)
    await run_day(366)
    assert len(await _events(db, "mailbox.purged")) == 1  # nothing more to purge, no second event


async def test_a_professional_finds_the_warning_in_the_inbox(
    db: Database, settings: Settings, run_day: Callable
) -> None:
    doctor = await _mailbox(db, DOCTOR)
    await run_day(335)
    assert await _subjects(db, doctor) == ["Votre messagerie de santé n'est plus utilisée"]
    async with db.read() as session:
        raw = bytes((await session.scalars(select(StoredMessage.raw))).one())
    notice = email.message_from_bytes(raw, policy=default)
    purge_on = (utcnow() + dt.timedelta(days=365)).date()
    assert notice["To"] == DOCTOR and notice["Auto-Submitted"] == "auto-generated"
    assert f"d'ici le {purge_on:%d/%m/%Y}" in notice.get_content()  # type: ignore[attr-defined]
    await run_day(340)
    assert len(await _subjects(db, doctor)) == 1  # warned once


async def test_a_login_after_the_warning_starts_the_count_again(
    db: Database, settings: Settings, calendar: Calendar, run_day: Callable
) -> None:
    doctor = await _mailbox(db, DOCTOR)
    kept = await _deliver(db, "Avis", doctor)
    await run_day(335)
    await note_activity(
        db, doctor, today=(calendar.start + dt.timedelta(days=340)).date()
    )  # what a login does
    await run_day(365)
    await run_day(400)
    assert await _stored(db, kept) and "Avis" in await _subjects(db, doctor)
    assert await _events(db, "mailbox.purged") == []
    await run_day(340 + 335)  # eleven months after that login: a new warning
    assert len(await _events(db, "mailbox.retention_warned")) == 2
    await run_day(340 + 365)
    assert await _subjects(db, doctor) == [] and not await _stored(db, kept)


async def test_the_purge_leaves_the_dmp_untouched(
    db: Database, settings: Settings, run_day: Callable
) -> None:
    patient, mailbox = await _patient_mailbox(db)
    filed_from = await _deliver(db, "Compte rendu", mailbox)
    async with db.write() as session:
        session.add(
            DmpDocument(
                patient_id=patient.id,
                unique_id="1.2.3.4",
                title="Compte rendu",
                content=b"%PDF",
                stored_message_id=filed_from,
            )
        )
    await run_day(335)
    await run_day(365)
    assert await _subjects(db, mailbox) == []
    async with db.read() as session:
        document = (await session.scalars(select(DmpDocument))).one()
    assert (document.title, document.stored_message_id) == ("Compte rendu", filed_from)
    assert await _stored(db, filed_from)  # the document's source message is the DMP's to keep


async def test_a_closed_account_is_purged_after_its_retention(
    db: Database, settings: Settings, calendar: Calendar, run_day: Callable
) -> None:
    settings.retention.closed_account_days = 30
    patient, mailbox = await _patient_mailbox(db)
    message = await _deliver(db, "Ordonnance", mailbox)
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.state, row.closed_at = PatientState.CLOSED, calendar.start
    await run_day(29)
    assert await _subjects(db, mailbox) == ["Ordonnance"]
    await run_day(30)
    assert await _subjects(db, mailbox) == [] and not await _stored(db, message)
    (purged,) = await _events(db, "mailbox.purged")
    assert purged.detail["reason"] == "closed_account"
    assert read_outbox(settings) == [] and await _events(db, "mailbox.retention_warned") == []


async def test_activity_is_written_once_a_day(db: Database) -> None:
    doctor = await _mailbox(db, "once@mss.localhost")
    today = utcnow().date()
    await note_activity(db, doctor, today=today)
    async with db.read() as session:
        assert (
            await session.scalar(select(Mailbox.last_active_on).where(Mailbox.id == doctor))
            == today
        )
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(
            5
        ):  # five more logins the same day: the row read at login says today already
            await note_activity(db, doctor, today, today)
            await note_activity(db, doctor, None, today)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert seen == []


async def test_the_daily_pass_is_queued_once(db: Database) -> None:
    assert await schedule_daily(db) is True
    assert await schedule_daily(db) is False
    async with db.read() as session:
        assert (
            await session.scalar(select(func.count()).select_from(Job).where(Job.kind == DAILY_JOB))
            == 1
        )


def test_the_policy_gives_the_full_notice_after_a_late_warning() -> None:
    rules = RetentionRules()
    created = dt.date(2026, 1, 1)
    late = created + dt.timedelta(days=400)  # the hub was off at 11 and 12 months
    facts = RetentionFacts(1, False, created)
    assert decide_retention(facts, rules, late).step is RetentionStep.WARN
    warned = RetentionFacts(1, False, created, warned_on=late)
    assert decide_retention(warned, rules, late + dt.timedelta(days=29)).step is RetentionStep.KEEP
    assert decide_retention(warned, rules, late + dt.timedelta(days=30)).step is RetentionStep.PURGE
