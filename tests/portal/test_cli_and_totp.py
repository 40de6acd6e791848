"""``mss patients letters``, ``mss dev outbox`` and the RFC 6238 test vectors."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from mss.cli import main
from mss.config import Settings
from mss.db import Database
from mss.directory.models import Patient, PatientState
from mss.notify import append_outbox
from mss.policy.one_time_code import decide_totp_step
from portal import totp
from tests.portal.conftest import add_patient


def _config(settings: Settings, tmp_path: Path) -> str:
    path = tmp_path / "mss.toml"
    path.write_text(
        f'data_dir = "{settings.data_dir}"\ndatabase_url = "{settings.database_url}"\n'
        '[portal]\npublic_url = "https://sante.example.fr"\n',
        encoding="utf-8",
    )
    return str(path)


def _run_db(url: str, coro_factory) -> object:  # type: ignore[no-untyped-def]
    async def run() -> object:
        db = Database(url)
        try:
            return await coro_factory(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_patients_letters_command(settings: Settings, tmp_path: Path) -> None:
    _run_db(
        settings.database_url,
        lambda db: add_patient(
            db, "201751234565108", "Faure", "Chloé", state=PatientState.CREATED, password=False
        ),
    )
    config, out = _config(settings, tmp_path), tmp_path / "lettres"
    result = CliRunner().invoke(
        main, ["--config", config, "patients", "letters", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "201751234565108  Chloé Faure" in result.output
    pdf = (out / "activation-201751234565108.pdf").read_bytes()
    assert b"https://sante.example.fr/activation" in pdf and b"Votre code d'activation" in pdf
    result = CliRunner().invoke(
        main, ["--config", config, "patients", "letters", "--out", str(out)]
    )
    assert result.exit_code == 0 and "no new patient needs an activation letter" in result.output

    async def state(db: Database) -> PatientState:
        async with db.read() as session:
            patient = await session.get(Patient, 1)
        assert patient is not None
        return patient.state

    assert _run_db(settings.database_url, state) is PatientState.OPPOSITION_WINDOW
    result = CliRunner().invoke(main, ["--config", config, "patients", "auto-activate"])
    assert result.exit_code == 0 and "0 accounts activated" in result.output


def test_dev_outbox_command(settings: Settings, tmp_path: Path) -> None:
    config = _config(settings, tmp_path)
    result = CliRunner().invoke(main, ["--config", config, "dev", "outbox"])
    assert result.exit_code == 0 and "is empty" in result.output
    append_outbox(
        settings, {"channel": "sms", "to": "+33611223344", "text": "Votre code : 123456."}
    )
    append_outbox(
        settings, {"channel": "email", "to": "a@example.org", "subject": "Sujet", "text": "Bonjour"}
    )
    result = CliRunner().invoke(main, ["--config", config, "dev", "outbox"])
    assert "SMS   to +33611223344" in result.output and "Votre code : 123456." in result.output
    assert "EMAIL to a@example.org  «Sujet»" in result.output
    result = CliRunner().invoke(
        main, ["--config", config, "dev", "outbox", "--json", "--to", "+33611223344"]
    )
    assert result.output.count("\n") == 1 and '"text": "Votre code : 123456."' in result.output


def test_rfc6238_vectors() -> None:
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    for seconds, expected in (
        (59, "94287082"),
        (1111111109, "07081804"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
    ):
        assert totp.totp(secret, dt.datetime.fromtimestamp(seconds, dt.UTC), digits=8) == expected


def test_totp_accepts_one_step_of_drift_only() -> None:
    secret = totp.new_secret()
    now = dt.datetime(2026, 5, 1, 12, 0, 10, tzinfo=dt.UTC)
    code = totp.totp(secret, now)
    assert totp.verify(secret, code, now + dt.timedelta(seconds=30))
    assert not totp.verify(secret, code, now + dt.timedelta(seconds=90))
    assert not totp.verify(secret, "12345", now) and not totp.verify(secret, "abcdef", now)
    uri = totp.provisioning_uri(secret, "201751234565108")
    assert uri.startswith(
        "otpauth://totp/Messagerie%20sant%C3%A9%3A201751234565108?secret=" + secret
    )
    assert "issuer=Messagerie%20sant%C3%A9" in uri and "digits=6" in uri and "period=30" in uri


def test_a_totp_step_is_accepted_once_and_only_after_the_last_one() -> None:
    secret = totp.new_secret()
    now = dt.datetime(2026, 5, 1, 12, 0, 10, tzinfo=dt.UTC)
    step = totp.matching_step(secret, totp.totp(secret, now), now + dt.timedelta(seconds=30))
    assert step == totp.time_step(now)  # found one step back (drift), and named
    assert decide_totp_step(step, None)
    assert not decide_totp_step(step, step) and not decide_totp_step(step - 1, step)
    assert "déjà servi" in decide_totp_step(step, step).sentence_fr
    assert decide_totp_step(step + 1, step)
