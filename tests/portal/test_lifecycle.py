"""Account lifecycle: letters and codes, activation, opposition, automatic activation, pause,
closing."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from mss.audit import AuditEvent
from mss.config import Settings
from mss.db import Database, utcnow
from mss.directory.models import Patient, PatientState
from mss.jobs import Job, JobRunner
from mss.notify import read_outbox
from mss.patients import (
    SYSTEM,
    Actor,
    LifecycleRefused,
    WrongActivationCode,
    activate_with_code,
    close_account,
    deactivate,
    issue_letters,
    oppose_with_code,
    reactivate,
    register_jobs,
)
from mss.services import Services
from portal.letters import write_letter
from tests.portal.conftest import add_patient

INS = "201751234562138"


async def _new_patient(db: Database) -> Patient:
    return await add_patient(db, INS, "Garcia", "Lucie", state=PatientState.CREATED, password=False)


async def _letters(
    db: Database, settings: Settings, out: Path, now: dt.datetime | None = None
) -> dict[str, str]:
    codes: dict[str, str] = {}

    async def write(patient: Patient, code: str) -> None:
        codes[patient.ins] = code
        await write_letter(out, patient, code, "https://portail.example")

    await issue_letters(db, settings, write, now)
    return codes


async def _reload(db: Database, patient_id: int) -> Patient:
    async with db.read() as session:
        patient = await session.get(Patient, patient_id)
    assert patient is not None
    return patient


async def _actions(db: Database, patient_id: int) -> list[str]:
    async with db.read() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent.action)
                    .where(AuditEvent.patient_id == patient_id)
                    .order_by(AuditEvent.id)
                )
            ).all()
        )


async def test_letters_issue_one_code_per_new_patient(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    patient = await _new_patient(db)
    codes = await _letters(db, settings, tmp_path)
    code = codes[INS]
    assert len(code) == 14 and code.count("-") == 2
    pdf = (tmp_path / f"activation-{INS}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert code.encode() in pdf and b"https://portail.example/activation" in pdf
    assert (tmp_path / f"activation-{INS}.pdf").stat().st_mode & 0o777 == 0o600
    fresh = await _reload(db, patient.id)
    assert fresh.state is PatientState.OPPOSITION_WINDOW
    assert fresh.activation_code_hash and code not in fresh.activation_code_hash
    assert await _letters(db, settings, tmp_path) == {}  # nobody new: no second code
    async with db.read() as session:
        job = (await session.scalars(select(Job).where(Job.kind == "patients.auto_activate"))).one()
    assert job.run_after == fresh.opposition_deadline
    assert await _actions(db, patient.id) == ["activation_code_issued"]


async def test_activation_with_code(db: Database, settings: Settings, tmp_path: Path) -> None:
    patient = await _new_patient(db)
    code = (await _letters(db, settings, tmp_path))[INS]
    actor = Actor("patient", INS, "Lucie Garcia", "127.0.0.1")
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        with pytest.raises(WrongActivationCode):
            await activate_with_code(session, row, "AAAA-AAAA-AAAA", "une phrase de 2 mots", actor)
        with pytest.raises(LifecycleRefused, match="au moins 12"):
            await activate_with_code(session, row, code, "court1", actor)
        with pytest.raises(LifecycleRefused, match="chiffre, une espace ou un symbole"):
            await activate_with_code(session, row, code.lower(), "uniquementdeslettres", actor)
        await activate_with_code(
            session, row, code.replace("-", " ").lower(), "une phrase de 2 mots", actor
        )
    fresh = await _reload(db, patient.id)
    assert (
        fresh.state is PatientState.ACTIVE
        and fresh.password_hash
        and fresh.activation_code_hash is None
    )
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        with pytest.raises(WrongActivationCode):  # single use
            await activate_with_code(session, row, code, "une phrase de 2 mots", actor)
    assert await _actions(db, patient.id) == ["activation_code_issued", "account_activated"]


async def test_opposition_before_and_after_the_deadline(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    patient = await _new_patient(db)
    code = (await _letters(db, settings, tmp_path))[INS]
    actor = Actor("patient", INS, "Lucie Garcia")
    deadline = (await _reload(db, patient.id)).opposition_deadline
    assert deadline is not None
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        with pytest.raises(LifecycleRefused, match="Le délai d'opposition a pris fin le"):
            await oppose_with_code(
                session, row, code, actor, now=deadline + dt.timedelta(seconds=1)
            )
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        await oppose_with_code(session, row, code, actor, now=deadline - dt.timedelta(days=1))
    fresh = await _reload(db, patient.id)
    assert fresh.state is PatientState.OPPOSED and fresh.activation_code_hash is None
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        with pytest.raises(LifecycleRefused):
            deactivate(session, row, actor)


async def test_auto_activation_job(db: Database, settings: Settings, tmp_path: Path) -> None:
    patient = await add_patient(
        db,
        INS,
        "Garcia",
        "Lucie",
        state=PatientState.CREATED,
        password=False,
        email="lucie@example.org",
    )
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        row.opposition_deadline = None  # the letter opens the window, as for a CREATED patient
    code = (await _letters(db, settings, tmp_path, now=utcnow() - dt.timedelta(days=43)))[INS]
    other = await add_patient(
        db,
        "101751234562287",
        "Garcia",
        "Marc",
        state=PatientState.OPPOSITION_WINDOW,
        password=False,
    )  # window still open: untouched
    runner = JobRunner(db, services=Services(settings))
    register_jobs(runner)
    assert await runner.run_once() == 1
    fresh = await _reload(db, patient.id)
    assert fresh.state is PatientState.ACTIVE and fresh.activated_at is not None
    assert (await _reload(db, other.id)).state is PatientState.OPPOSITION_WINDOW
    assert await _actions(db, patient.id) == [
        "activation_code_issued",
        "activation_code_emailed",  # an e-mail is on file: the code goes there too
        "account_auto_activated",
    ]
    mailed = [r for r in read_outbox(settings) if r["to"] == "lucie@example.org"]
    assert len(mailed) == 1 and code in mailed[0]["text"] and INS in mailed[0]["text"]
    assert "/opposition" in mailed[0]["text"]  # sent during the opposition window
    async with db.read() as session:
        jobs = (await session.scalars(select(Job).order_by(Job.id))).all()
    assert [(j.kind, j.state, j.payload.get("channel")) for j in jobs] == [
        ("patients.auto_activate", "done", None),
        ("notify.patient", "pending", "email"),
        ("notify.patient", "pending", "sms"),
    ]
    # the code still sets the first password, but opposing is over
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        with pytest.raises(LifecycleRefused, match="délai d'opposition a pris fin"):
            await oppose_with_code(session, row, code, Actor("patient", INS, "Lucie Garcia"))
        await activate_with_code(
            session, row, code, "une phrase de 2 mots", Actor("patient", INS, "Lucie")
        )
    assert (await _reload(db, patient.id)).password_hash


async def test_pause_resume_close_and_their_refusals(db: Database) -> None:
    patient = await add_patient(db, INS, "Garcia", "Lucie")
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        with pytest.raises(LifecycleRefused, match="Seul un compte désactivé"):
            reactivate(session, row, SYSTEM)
        deactivate(session, row, SYSTEM)
        with pytest.raises(LifecycleRefused, match="Seul un compte actif"):
            deactivate(session, row, SYSTEM)
        reactivate(session, row, SYSTEM)
        close_account(session, row, SYSTEM)
        with pytest.raises(LifecycleRefused, match="Seul un compte ouvert"):
            close_account(session, row, SYSTEM)
        with pytest.raises(LifecycleRefused):
            reactivate(session, row, SYSTEM)
    fresh = await _reload(db, patient.id)
    assert fresh.state is PatientState.CLOSED and fresh.closed_at is not None
    assert await _actions(db, patient.id) == [
        "account_deactivated",
        "account_reactivated",
        "account_closed",
    ]


async def test_a_code_e_mail_that_cannot_go_does_not_stop_the_letters(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    await add_patient(
        db,
        INS,
        "Garcia",
        "Lucie",
        state=PatientState.CREATED,
        password=False,
        email="l@example.org",
    )
    with socket.socket() as unused:  # a port nobody listens on: the smarthost is down
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.notifications.smarthost, settings.notifications.smarthost_port = "127.0.0.1", port
    codes = await _letters(db, settings, tmp_path)
    assert codes[INS].encode() in (tmp_path / f"activation-{INS}.pdf").read_bytes()
    async with db.read() as session:
        patient = (await session.scalars(select(Patient))).one()
    assert await _actions(db, patient.id) == ["activation_code_issued"]  # no e-mail went
