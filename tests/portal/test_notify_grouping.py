"""Notices grouped within a window, a minor's notices to the guardians, the channels a patient
chose: through the real job runner and the development outbox, on both engines."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, update

from mss.config import Settings
from mss.db import Database
from mss.directory.models import Patient
from mss.jobs import Job, JobRunner
from mss.notify import notify_patient, read_outbox, register_jobs
from mss.services import Services
from tests.portal.conftest import add_guardianship, add_patient
from tests.portal.test_notify import _ins

WINDOW = 1.0


def _runner(db: Database, settings: Settings) -> JobRunner:
    runner = JobRunner(db, services=Services(settings))
    register_jobs(runner)
    return runner


async def _notify(db: Database, patient: Patient, kind: str, link: str = "/agenda") -> None:
    async with db.write() as session:
        notify_patient(session, patient, kind, link)


async def _set(db: Database, patient: Patient, **values: object) -> None:
    async with db.write() as session:
        await session.execute(update(Patient).where(Patient.id == patient.id).values(**values))


async def _run_after_the_window(db: Database, settings: Settings) -> None:
    runner = _runner(db, settings)
    await runner.run_once()  # the notices join their group, which waits for the window
    await asyncio.sleep(WINDOW + 0.2)
    await runner.run_once()


async def test_three_convocations_in_a_minute_make_one_sms_and_one_email(
    db: Database, settings: Settings
) -> None:
    settings.notifications.group_seconds = WINDOW
    hugo = await add_patient(
        db, _ins(11), "Noël", "Hugo", email="h@example.org", phone="+33600000011"
    )
    for _ in range(3):
        await _notify(db, hugo, "appointment")
    await _notify(db, hugo, "new_message", "/messages")
    runner = _runner(db, settings)
    await runner.run_once()
    assert read_outbox(settings) == []  # held for the window
    async with db.read() as session:
        held = (await session.scalars(select(Job.payload).where(Job.state == "pending"))).all()
    assert [payload["notices"] for payload in held] == [
        [  # one entry per kind, however many arrived: the payload does not grow per notice
            {"kind": "appointment", "link": "/agenda", "count": 3},
            {"kind": "new_message", "link": "/messages", "count": 1},
        ]
    ] * 2  # one group per channel
    await asyncio.sleep(WINDOW + 0.2)
    await runner.run_once()
    sent = read_outbox(settings)
    assert sorted((r["channel"], r["to"]) for r in sent) == [
        ("email", "h@example.org"),
        ("sms", "+33600000011"),
    ]
    sms = next(r for r in sent if r["channel"] == "sms")
    assert sms["text"].startswith(
        "4 nouveautés dans votre espace santé : un rendez-vous ajouté, modifié ou annulé dans "
        "l'agenda (3 fois), un nouveau message."
    )
    assert sms["text"].endswith("/")  # two different links: the portal's home
    # A notice after the group went out starts a group of its own.
    await _notify(db, hugo, "new_document", "/dossier")
    await _run_after_the_window(db, settings)
    later = read_outbox(settings)[len(sent) :]
    assert len(later) == 2 and all("nouveau document" in r["text"] for r in later)
    async with db.read() as session:
        states = (await session.scalars(select(Job.state))).all()
    assert set(states) == {"done"}


async def test_a_childs_notices_go_to_the_guardians(db: Database, settings: Settings) -> None:
    settings.notifications.group_seconds = WINDOW
    mother = await add_patient(
        db, _ins(21), "Petit", "Claire", email="claire@example.org", phone="+33600000021"
    )
    father = await add_patient(db, _ins(22), "Petit", "Marc", email=None, phone="+33600000022")
    emma = await add_patient(db, _ins(23), "Petit", "Emma", email="emma@example.org", phone=None)
    today = dt.date.today()
    await _set(db, emma, birth_date=today.replace(year=today.year - 10))
    for guardian in (mother, father):
        await add_guardianship(db, guardian, emma)
    await _notify(db, emma, "new_message", "/messages")
    await _notify(db, emma, "login_locked", "/connexion")  # her own login: to her
    await _run_after_the_window(db, settings)
    sent = read_outbox(settings)
    told = sorted((r["channel"], r["to"]) for r in sent)
    assert told == [
        ("email", "claire@example.org"),
        ("email", "emma@example.org"),  # the login notice, hers
        ("sms", "+33600000021"),
        ("sms", "+33600000022"),  # the father has a phone only: the minor's e-mail job carries it
    ]
    to_guardians = [r for r in sent if r["to"] != "emma@example.org"]
    assert all(
        "d'un enfant dont vous êtes le représentant légal" in r["text"] for r in to_guardians
    )
    assert all("Emma" not in r["text"] for r in sent)  # no name in a notice
    mine = next(r for r in sent if r["to"] == "emma@example.org")
    assert "connexion" in mine["subject"].lower()


async def test_from_sixteen_a_minor_with_an_address_is_told_too(
    db: Database, settings: Settings
) -> None:
    mother = await add_patient(db, _ins(31), "Roux", "Anne", email="anne@example.org", phone=None)
    leo = await add_patient(db, _ins(32), "Roux", "Léo", email=None, phone="+33600000032")
    await add_guardianship(db, mother, leo)
    today = dt.date.today()
    await _set(db, leo, birth_date=today.replace(year=today.year - 16) - dt.timedelta(days=1))
    await _notify(db, leo, "new_document", "/dossier")
    await _runner(db, settings).run_once()
    assert sorted((r["channel"], r["to"]) for r in read_outbox(settings)) == [
        ("email", "anne@example.org"),
        ("sms", "+33600000032"),
    ]
    settings.notifications.minor_own_contact_age = 17  # the age is the configuration's
    await _notify(db, leo, "new_document", "/dossier")
    await _runner(db, settings).run_once()
    assert [r["to"] for r in read_outbox(settings)[2:]] == ["anne@example.org"]


async def test_the_patient_chooses_the_channels(db: Database, settings: Settings) -> None:
    hugo = await add_patient(
        db, _ins(41), "Noël", "Hugo", email="h@example.org", phone="+33600000041"
    )
    await _set(db, hugo, notify_channels="sms")
    await _notify(db, hugo, "new_message", "/messages")
    await _runner(db, settings).run_once()
    assert [r["channel"] for r in read_outbox(settings)] == ["sms"]
    await _set(db, hugo, notify_channels="email")
    await _notify(db, hugo, "new_message", "/messages")
    await _runner(db, settings).run_once()
    assert [r["channel"] for r in read_outbox(settings)[1:]] == ["email"]
    # SMS chosen but no phone any more: the notice still reaches them, by e-mail.
    await _set(db, hugo, notify_channels="sms", phone=None)
    await _notify(db, hugo, "new_message", "/messages")
    await _runner(db, settings).run_once()
    assert [r["channel"] for r in read_outbox(settings)[2:]] == ["email"]
