"""The hand-over of a minor's space at 16: the guardians told 30 days before, then their access
ended, the minor's own code (letter and e-mail), the hidden documents' history given to them.

The daily job runs with an injected clock (``Services.clock``), on both engines.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from dmp_bridge.access import Viewer, audit
from dmp_bridge.models import DmpDocument
from mss.audit import AuditEvent
from mss.config import Settings
from mss.db import Database, utcnow
from mss.directory.models import Guardianship, Patient, PatientState
from mss.jobs import Job, JobRunner, enqueue
from mss.notify import read_outbox
from mss.patients import Actor, activate_with_code
from mss.services import Services
from portal import handover
from tests.portal.conftest import add_guardianship, add_patient
from tests.portal.dossier_world import file_documents

MINOR_INS, MOTHER_INS, FATHER_INS = "210067512345609", "285017512345625", "180027512345678"
MINOR_EMAIL, MOTHER_EMAIL, FATHER_PHONE = "leo@example.org", "anne@example.org", "+33600000002"


class Calendar:
    """The jobs' clock: a fixed day the test moves."""

    def __init__(self, day: dt.date) -> None:
        self.day = day

    def now(self) -> dt.datetime:
        return dt.datetime.combine(self.day, dt.time(9), dt.UTC)


async def _family(db: Database, born: dt.date, *, minor_email: str | None = MINOR_EMAIL):
    minor = await add_patient(
        db, MINOR_INS, "Martin", "Léo", phone=None, email=minor_email, password=False
    )
    mother = await add_patient(db, MOTHER_INS, "Martin", "Anne", phone=None, email=MOTHER_EMAIL)
    father = await add_patient(db, FATHER_INS, "Martin", "Paul", phone=FATHER_PHONE)
    async with db.write() as session:
        row = await session.get(Patient, minor.id)
        assert row is not None
        row.birth_date = born
    await add_guardianship(db, mother, minor)
    await add_guardianship(db, father, minor)
    return minor, mother, father


def _runner(db: Database, settings: Settings, calendar: Calendar) -> JobRunner:
    runner = JobRunner(db, services=Services(settings, clock=calendar.now))
    handover.register_jobs(runner)
    return runner


async def _day(db: Database, runner: JobRunner, calendar: Calendar, day: dt.date) -> None:
    calendar.day = day
    async with db.write() as session:
        enqueue(session, handover.DAILY_JOB, {"once": True})
    await runner.drain()


async def _actions(db: Database, patient_id: int) -> list[str]:
    async with db.read() as session:
        query = select(AuditEvent.action).where(AuditEvent.patient_id == patient_id)
        return list((await session.scalars(query.order_by(AuditEvent.id))).all())


async def _guardians(db: Database, minor_id: int) -> list[int]:
    async with db.read() as session:
        query = select(Guardianship.guardian_id).where(Guardianship.minor_id == minor_id)
        return sorted((await session.scalars(query)).all())


async def test_guardians_are_told_once_then_the_space_is_handed_over(
    db: Database, settings: Settings
) -> None:
    born = dt.date(2010, 6, 15)
    minor, mother, father = await _family(db, born)
    calendar = Calendar(dt.date(2026, 5, 1))
    runner = _runner(db, settings, calendar)

    await _day(db, runner, calendar, dt.date(2026, 5, 15))  # 31 days before: nothing yet
    assert read_outbox(settings) == []
    await _day(db, runner, calendar, dt.date(2026, 5, 16))  # 30 days before: the notice
    await _day(db, runner, calendar, dt.date(2026, 5, 17))  # not twice
    sent = read_outbox(settings)
    assert sorted(r["to"] for r in sent) == [FATHER_PHONE, MOTHER_EMAIL]
    for record in sent:
        assert "le 15 juin 2026, à ses 16 ans" in record["text"]
        assert "Léo" not in record["text"]  # no name in a notice
    assert (await _actions(db, minor.id)).count("account_handover_notice") == 1
    assert await _guardians(db, minor.id) == sorted([mother.id, father.id])

    await _day(db, runner, calendar, dt.date(2026, 6, 14))  # the day before: still held
    assert await _guardians(db, minor.id) == sorted([mother.id, father.id])
    await _day(db, runner, calendar, dt.date(2026, 6, 15))  # the birthday
    assert await _guardians(db, minor.id) == []
    actions = await _actions(db, minor.id)
    assert actions.count("account_guardianship_ended") == 2
    assert actions[-3:] == [
        "activation_code_issued",
        "account_handed_over",
        "activation_code_emailed",
    ]
    assert "account_guardianship_ended" in await _actions(db, mother.id)
    assert "account_guardianship_ended" in await _actions(db, father.id)

    # the minor's own code: the letter in <data_dir>/letters and the e-mail, the same code
    letter = (settings.data_path / "letters" / f"activation-{MINOR_INS}.pdf").read_bytes()
    mail = [r for r in read_outbox(settings) if r["to"] == MINOR_EMAIL]
    assert len(mail) == 1 and MINOR_INS in mail[0]["text"]
    found = re.search(r"code d'activation : ([A-Z0-9-]{14})", mail[0]["text"])
    assert found and found.group(1).encode() in letter
    assert "Votre compte est déjà ouvert".encode("cp1252") in letter  # no opposition window
    assert b"/opposition" not in letter
    async with db.write() as session:
        row = await session.get(Patient, minor.id)
        assert row is not None
        await activate_with_code(
            session, row, found.group(1), "ma phrase à moi 16", Actor("patient", MINOR_INS, "Léo")
        )
    async with db.read() as session:
        fresh = await session.get(Patient, minor.id)
    assert fresh is not None and fresh.password_hash and fresh.state is PatientState.ACTIVE

    await _day(db, runner, calendar, dt.date(2026, 6, 16))  # done once
    assert (await _actions(db, minor.id)).count("account_handed_over") == 1


async def test_a_hub_that_was_off_hands_over_late_and_the_age_is_a_setting(
    db: Database, settings: Settings
) -> None:
    settings.portal.handover_age = 15
    minor, _mother, _father = await _family(db, dt.date(2010, 6, 15), minor_email=None)
    calendar = Calendar(dt.date(2025, 7, 1))  # past the 15th birthday, never told: handed over
    runner = _runner(db, settings, calendar)
    await _day(db, runner, calendar, calendar.day)
    assert await _guardians(db, minor.id) == []
    assert (settings.data_path / "letters" / f"activation-{MINOR_INS}.pdf").is_file()
    assert [r for r in read_outbox(settings) if r["to"] == MINOR_EMAIL] == []  # none on file
    assert "activation_code_emailed" not in await _actions(db, minor.id)


async def test_documents_hidden_from_guardians_join_the_new_holders_history(
    db: Database, settings: Settings
) -> None:
    minor, mother, _father = await _family(db, dt.date(2010, 6, 15))
    documents = await file_documents(db, minor)
    hidden = documents["invisible_guardians"]
    async with db.write() as session:
        row = await session.get(Patient, minor.id)
        document = await session.get(DmpDocument, hidden)
        assert row is not None and document is not None
        event = await audit(session, "document_read", Viewer.for_patient(row), row, document)
    assert event.patient_id is None  # withheld while guardians read the minor's history

    async def targets() -> set[str]:
        async with db.read() as session:
            query = select(AuditEvent.target).where(AuditEvent.patient_id == minor.id)
            return set((await session.scalars(query)).all())

    assert f"dmp-document:{hidden}" not in await targets()
    calendar = Calendar(dt.date(2026, 6, 15))
    await _day(db, _runner(db, settings, calendar), calendar, calendar.day)
    assert f"dmp-document:{hidden}" in await targets()
    async with db.read() as session:
        query = select(AuditEvent).where(
            AuditEvent.patient_id == minor.id, AuditEvent.action == "account_handed_over"
        )
        done = (await session.scalars(query)).one()
    assert done.detail["documents"] == 1 and done.detail["guardians"] == 2
    assert mother.id not in await _guardians(db, minor.id)


async def test_no_handover_without_a_birth_date_nor_for_a_closed_account(
    db: Database, settings: Settings
) -> None:
    minor, _mother, _father = await _family(db, dt.date(2010, 6, 15))
    other = await add_patient(db, "110067512345688", "Petit", "Zoé", password=False)
    await add_guardianship(db, _mother, other)  # no birth date: kept
    async with db.write() as session:
        row = await session.get(Patient, minor.id)
        assert row is not None
        row.state = PatientState.CLOSED
    calendar = Calendar(dt.date(2026, 6, 15))
    await _day(db, _runner(db, settings, calendar), calendar, calendar.day)
    assert await _guardians(db, minor.id) == []  # guardians' access ends all the same
    assert "activation_code_issued" not in await _actions(db, minor.id)  # no code: closed
    assert await _guardians(db, other.id) == [_mother.id]


async def test_the_daily_pass_is_queued_once_and_then_for_the_next_day(
    db: Database, settings: Settings
) -> None:
    from mss.jobs import schedule_daily

    assert await schedule_daily(db, handover.DAILY_JOB)
    assert not await schedule_daily(db, handover.DAILY_JOB)
    calendar = Calendar(utcnow().date())
    runner = _runner(db, settings, calendar)
    await runner.run_once()
    async with db.read() as session:
        jobs = (await session.scalars(select(Job).where(Job.kind == handover.DAILY_JOB))).all()
    assert sorted(j.state for j in jobs) == ["done", "pending"]
    pending = next(j for j in jobs if j.state == "pending")
    assert pending.run_after.date() == calendar.day + dt.timedelta(days=1)


async def test_the_notice_delay_is_a_setting_and_the_hub_runs_the_jobs(
    db: Database, settings: Settings
) -> None:
    from mss.serve import job_runner

    settings.portal.handover_notice_days = 7
    minor, _mother, _father = await _family(db, dt.date(2010, 6, 15))
    runner = job_runner(db, Services(settings, clock=Calendar(dt.date(2026, 6, 7)).now))
    assert {handover.DAILY_JOB, handover.NOTICE_JOB} <= set(runner.handlers)
    calendar = Calendar(dt.date(2026, 6, 7))
    runner = _runner(db, settings, calendar)
    await _day(db, runner, calendar, dt.date(2026, 6, 7))  # 8 days before: not yet
    assert read_outbox(settings) == []
    await _day(db, runner, calendar, dt.date(2026, 6, 8))  # 7 days before
    assert len(read_outbox(settings)) == 2
    assert "account_handover_notice" in await _actions(db, minor.id)
