"""Activation without the letter (INS + birth date + a code sent to the phone or e-mail on
file), and the changes of mind it serves: activating after an opposition, reopening after a
closing within the retention; the CLI's ``withdraw-opposition`` and ``reopen``."""

from __future__ import annotations

import datetime as dt
import html as html_text
import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from mss.audit import AuditEvent
from mss.cli import main
from mss.config import Settings
from mss.db import Database, utcnow
from mss.directory.models import Patient, PatientState
from mss.notify import read_outbox
from tests.portal.conftest import Hub, add_patient
from tests.portal.test_cli_and_totp import _config, _run_db

INS, PHONE, EMAIL = "201751234566195", "+33612345678", "lucie@example.org"
BORN = dt.date(1985, 3, 12)
PASSWORD = "ma nouvelle phrase 7"
START, CODE_PAGE = "/activation/sans-courrier", "/activation/sans-courrier/code"


async def _patient(
    db: Database,
    state: PatientState,
    *,
    password: bool = False,
    phone: str | None = PHONE,
    email: str | None = None,
    closed_days_ago: int | None = None,
) -> Patient:
    patient = await add_patient(
        db, INS, "Garcia", "Lucie", state=state, password=password, phone=phone, email=email
    )
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.birth_date = BORN
        if closed_days_ago is not None:
            row.closed_at = utcnow() - dt.timedelta(days=closed_days_ago)
    return patient


async def _reload(db: Database, patient_id: int) -> Patient:
    async with db.read() as session:
        patient = await session.get(Patient, patient_id)
    assert patient is not None
    return patient


async def _actions(db: Database, patient_id: int) -> list[str]:
    async with db.read() as session:
        query = select(AuditEvent.action).where(AuditEvent.patient_id == patient_id)
        return list((await session.scalars(query.order_by(AuditEvent.id))).all())


async def _prove(hub: Hub, ins: str = INS, born: str = "12/03/1985") -> tuple[int, str]:
    response = await hub.post(START, {"ins": ins, "naissance": born})
    return response.status, html_text.unescape(await response.text())


async def _finish(hub: Hub, code: str, confirm: bool = False, **fields: str) -> tuple[int, str]:
    data = {"code": code, "mot_de_passe": PASSWORD, "confirmation": PASSWORD, **fields}
    if confirm:
        data["confirme"] = "oui"
    response = await hub.post(CODE_PAGE, data)
    return response.status, html_text.unescape(await response.text())


async def _code_page(hub: Hub) -> tuple[int, str]:
    response, page = await hub.page(CODE_PAGE)
    return response.status, html_text.unescape(page)


async def test_a_new_account_is_activated_without_the_letter(hub: Hub) -> None:
    patient = await _patient(hub.db, PatientState.OPPOSITION_WINDOW)
    status, html = await _prove(hub, born="1985-03-12")  # the date field's own form works too
    assert status == 303, html
    status, html = await _code_page(hub)
    assert status == 200 and "par SMS au •• •• •• 78" in html
    assert "retire mon opposition" not in html  # nothing to confirm for a first activation
    code = hub.last_code(PHONE)
    assert (
        "activer votre messagerie santé sans le courrier" in read_outbox(hub.settings)[-1]["text"]
    )
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    status, html = await _finish(hub, wrong)
    assert status == 401 and "Ce code n'est pas celui qui vous a été envoyé." in html
    hub.clock.advance(seconds=3)  # the throttle's back-off after a wrong code
    status, html = await _finish(hub, code, mot_de_passe="court1", confirmation="court1")
    assert status == 422 and "au moins 12" in html
    status, html = await _finish(hub, code, confirmation="une autre phrase 8")
    assert status == 400 and "différents" in html
    status, html = await _finish(hub, code)
    assert status == 200 and "Votre compte est activé" in html
    fresh = await _reload(hub.db, patient.id)
    assert fresh.state is PatientState.ACTIVE and fresh.password_hash
    actions = await _actions(hub.db, patient.id)
    assert actions[-1] == "account_activated" and "activation_identity_checked" in actions
    assert "activation_failed" in actions  # the wrong code
    response, _ = await hub.page(CODE_PAGE)  # the proof is spent with the session
    assert response.status == 303 and response.headers["Location"] == START
    await hub.login(INS, PASSWORD)


async def test_wrong_ins_or_birth_date_is_one_refusal_and_is_throttled(hub: Hub) -> None:
    patient = await _patient(hub.db, PatientState.OPPOSITION_WINDOW)
    sentence = "Ce numéro INS et cette date de naissance ne correspondent à aucun compte."
    status, html = await _prove(hub, born="13/03/1985")
    assert status == 401 and sentence in html
    hub.clock.advance(seconds=3)
    status, html = await _prove(hub, ins="101751234562287")  # a valid INS nobody has
    assert status == 401 and sentence in html
    status, html = await _prove(hub, born="pas une date")
    assert status == 400 and "12/03/1985" in html
    for _ in range(8):  # the same INS again and again, without waiting: held back, then locked
        status, html = await _prove(hub, born="01/01/1990")
        if status == 429:
            break
    assert status == 429
    status, html = await _prove(hub)  # even the right birth date is held back now
    assert status == 429
    assert read_outbox(hub.settings) == []  # no code went anywhere
    assert "activation_identity_failed" in await _actions(hub.db, patient.id)


async def test_an_expired_code_is_refused(hub: Hub) -> None:
    await _patient(hub.db, PatientState.CREATED, phone=None, email=EMAIL)
    assert (await _prove(hub))[0] == 303
    mail = read_outbox(hub.settings)[-1]
    assert mail["to"] == EMAIL and mail["subject"] == "Votre code pour activer votre compte"
    code = re.search(r"\b(\d{6})\b", mail["text"]).group(1)  # type: ignore[union-attr]
    _status, html = await _code_page(hub)
    assert "par e-mail à l•••@example.org" in html
    hub.clock.advance(minutes=6)
    status, html = await _finish(hub, code)
    assert status == 401 and "Ce code a expiré" in html


async def test_no_contact_on_file_and_an_account_already_open(hub: Hub) -> None:
    await _patient(hub.db, PatientState.CREATED, phone=None, email=None)
    status, html = await _prove(hub)
    assert status == 409 and "Aucun téléphone ni adresse e-mail" in html
    async with hub.db.write() as session:
        row = (await session.scalars(select(Patient))).one()
        row.state, row.phone = PatientState.ACTIVE, PHONE
        row.password_hash = "$argon2id$placeholder"
    hub.clock.advance(seconds=3)
    status, html = await _prove(hub)
    assert status == 409 and "déjà activé : connectez-vous" in html


async def test_activate_after_opposing_is_confirmed(hub: Hub) -> None:
    patient = await _patient(hub.db, PatientState.OPPOSED)
    assert (await _prove(hub))[0] == 303
    _status, html = await _code_page(hub)
    assert "Je retire mon opposition" in html
    code = hub.last_code(PHONE)
    status, html = await _finish(hub, code)  # the box is not ticked
    assert status == 400 and "Cochez la case" in html
    assert (await _reload(hub.db, patient.id)).state is PatientState.OPPOSED
    status, html = await _finish(hub, code, confirm=True)
    assert status == 200 and "Votre opposition est retirée" in html
    fresh = await _reload(hub.db, patient.id)
    assert fresh.state is PatientState.ACTIVE and fresh.activated_at is not None
    assert (await _actions(hub.db, patient.id))[-1] == "account_opposition_withdrawn"
    await hub.login(INS, PASSWORD)


async def test_reopen_after_closing_within_the_retention_only(hub: Hub) -> None:
    patient = await _patient(hub.db, PatientState.CLOSED, password=True, closed_days_ago=10)
    assert (await _prove(hub))[0] == 303
    _status, html = await _code_page(hub)
    assert "Je rouvre mon compte." in html and "Vous pouvez le rouvrir jusqu'au" in html
    status, html = await _finish(hub, hub.last_code(PHONE), confirm=True)
    assert status == 200 and "Votre compte est rouvert" in html
    fresh = await _reload(hub.db, patient.id)
    assert fresh.state is PatientState.ACTIVE and fresh.closed_at is None
    assert (await _actions(hub.db, patient.id))[-1] == "account_reopened"
    await hub.login(INS, PASSWORD)

    async with hub.db.write() as session:  # closed again, long ago: past the retention
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.state, row.closed_at = PatientState.CLOSED, utcnow() - dt.timedelta(days=91)
    hub.clock.advance(seconds=3)
    status, html = await _prove(hub)
    assert status == 409 and "il ne peut plus être rouvert" in html
    closed_on = (utcnow() - dt.timedelta(days=91)).strftime("%d/%m/%Y")
    assert f"Ce compte a été clôturé le {closed_on}" in html


def test_cli_withdraws_an_opposition_and_reopens(settings: Settings, tmp_path: Path) -> None:
    _run_db(settings.database_url, lambda db: _patient(db, PatientState.OPPOSED, email=EMAIL))
    config, out = _config(settings, tmp_path), tmp_path / "lettres"
    result = CliRunner().invoke(
        main, ["--config", config, "patients", "withdraw-opposition", INS], input="n\n"
    )
    assert result.exit_code == 1 and "Aborted" in result.output  # the confirmation said no
    result = CliRunner().invoke(main, ["--config", config, "patients", "reopen", INS, "--yes"])
    assert result.exit_code != 0 and "Seul un compte clôturé peut être rouvert" in result.output
    result = CliRunner().invoke(
        main,
        ["--config", config, "patients", "withdraw-opposition", INS, "--out", str(out)],
        input="y\n",
    )
    assert result.exit_code == 0, result.output
    assert "opposition withdrawn, account active" in result.output
    pdf = (out / f"activation-{INS}.pdf").read_bytes()
    mail = [r for r in read_outbox(settings) if r["to"] == EMAIL]
    found = re.search(r"code d'activation : ([A-Z0-9-]{14})", mail[-1]["text"])
    assert found and found.group(1).encode() in pdf

    async def close(db: Database) -> None:
        async with db.write() as session:
            row = (await session.scalars(select(Patient))).one()
            row.state, row.closed_at = PatientState.CLOSED, utcnow() - dt.timedelta(days=100)

    _run_db(settings.database_url, close)
    result = CliRunner().invoke(main, ["--config", config, "patients", "reopen", INS, "--yes"])
    assert result.exit_code != 0 and "il ne peut plus être rouvert" in result.output

    async def recently(db: Database) -> list[str]:
        async with db.write() as session:
            row = (await session.scalars(select(Patient))).one()
            row.closed_at = utcnow() - dt.timedelta(days=1)
        return await _actions(db, row.id)

    _run_db(settings.database_url, recently)
    result = CliRunner().invoke(main, ["--config", config, "patients", "reopen", INS, "--yes"])
    assert result.exit_code == 0 and "account reopened" in result.output
    actions = _run_db(settings.database_url, lambda db: _actions(db, 1))
    assert "account_opposition_withdrawn" in actions and actions[-1] in (
        "account_reopened",
        "activation_code_emailed",
    )
