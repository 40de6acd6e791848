"""``mss directory import-*`` and ``mss mailbox passwd`` as a user runs them.

Errors are one line ``mss: <file>:<line>: <sentence>`` with exit code 2, and
nothing is half-written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from mss.cli import main
from mss.db import Database
from mss.directory.models import Mailbox, Patient, Professional, TrustedDomain
from mss.directory.store import check_mailbox_password_async, find_mailbox
from tests.fhir_directory_samples import ANNUAIRE, API_MSS, bundle, sample, write_json
from tests.test_import_patients import GOOD, MOTHER, roster
from tests.test_import_whitelist import BILLION_LAUGHS, EXTERNAL_ENTITY, SAMPLE

DUPONT = "jean-marie.dupont@infirmier.mssante.fr"


@pytest.fixture
def mss(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``mss ARGS...`` on the test database, with stdin text."""
    runner = CliRunner()
    env = {
        "MSS_DATABASE_URL": database_url,
        "MSS_DATA_DIR": str(tmp_path / "var"),
        "MSS_CONFIG": None,
    }

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


def count(database_url: str, model: type) -> int:
    async def query() -> int:
        db = Database(database_url)
        try:
            async with db.read() as session:
                return int(
                    (await session.execute(select(func.count()).select_from(model))).scalar_one()
                )
        finally:
            await db.dispose()

    return asyncio.run(query())


def one_error_line(result: Result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [expected]
    assert "Traceback" not in result.output


def test_import_fhir_samples_then_nothing_changes(
    mss,
    database_url: str,
    ans_data: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    result = mss("directory", "import-fhir", str(ans_data / ANNUAIRE))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{ans_data / ANNUAIRE}: 1 added, 0 updated, 0 unchanged\n"
    assert "warning:" in result.stderr and "10102727017 fails its Luhn check" in result.stderr
    path = write_json(
        tmp_path / "both.json", bundle(sample(ans_data, ANNUAIRE), sample(ans_data, API_MSS))
    )
    assert mss("directory", "import-fhir", path).stdout.endswith(
        "1 added, 0 updated, 1 unchanged\n"
    )
    again = mss("directory", "import-fhir", path)
    assert again.exit_code == 0
    assert again.stdout == f"{path}: nothing changed, 2 entries are already up to date\n"
    assert (count(database_url, Professional), count(database_url, Mailbox)) == (2, 2)


def test_import_fhir_refusals(mss, database_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle",\n "entry": [\n}')
    one_error_line(
        mss("directory", "import-fhir", str(broken)),
        f"mss: {broken}:3: not valid JSON: Expecting value (column 1)",
    )
    one_error_line(
        mss("directory", "import-fhir", str(tmp_path / "missing.json")),
        f"mss: {tmp_path / 'missing.json'}: no such file",
    )
    assert count(database_url, Professional) == 0


def test_import_whitelist_and_hostile_xml(
    mss,
    database_url: str,
    ans_data: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    result = mss("directory", "import-whitelist", str(ans_data / SAMPLE))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{ans_data / SAMPLE}: 4 added, 0 updated, 0 unchanged\n"
    for name, content, sentence in (
        ("lol.xml", BILLION_LAUGHS, "3: the file declares the entity 'lol'"),
        ("xxe.xml", EXTERNAL_ENTITY, "2: the file declares the external entity 'xxe'"),
    ):
        path = tmp_path / name
        path.write_text(content)
        result = mss("directory", "import-whitelist", str(path))
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith(f"mss: {path}:{sentence}")
    assert count(database_url, TrustedDomain) == 4
    again = mss("directory", "import-whitelist", str(ans_data / SAMPLE))
    assert "nothing changed, 4 entries are already up to date" in again.stdout


def test_import_patients_refusals_and_skip_invalid(
    mss,
    database_url: str,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    unknown = roster(
        tmp_path, header="ins,family_name,given_names,birth_date,nss\n", name="unknown.csv"
    )
    one_error_line(
        mss("directory", "import-patients", unknown),
        f"mss: {unknown}:1: unknown column 'nss'; the columns are ins, family_name, "
        "given_names, birth_date, email, phone, guardian_ins",
    )
    bad_key = roster(tmp_path, GOOD[1], f"{MOTHER[:-2]}11,NESSI,Jean,1980-01-01,,,", name="key.csv")
    one_error_line(
        mss("directory", "import-patients", bad_key),
        f"mss: {bad_key}:3: INS '277076322082911' has key 11 but its NIR gives key 10 "
        "(97 - NIR mod 97): a digit is probably mistyped",
    )
    duplicate = roster(tmp_path, GOOD[1], GOOD[1], name="dup.csv")
    one_error_line(
        mss("directory", "import-patients", duplicate),
        f"mss: {duplicate}:3: INS {MOTHER} already appears on line 2",
    )
    assert count(database_url, Patient) == 0 and count(database_url, Mailbox) == 0

    result = mss("directory", "import-patients", "--skip-invalid", bad_key)
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0].startswith(
        f"mss: skipped {bad_key}:3: INS '277076322082911'"
    )
    assert result.stdout == f"{bad_key}: 1 added, 0 updated, 0 unchanged; 1 skipped\n"
    result = mss("directory", "import-patients", roster(tmp_path, *GOOD, name="good.csv"))
    assert result.stdout.endswith("good.csv: 2 added, 0 updated, 1 unchanged\n")
    assert count(database_url, Patient) == 3


def _password_ok(database_url: str, address: str, password: str) -> bool:
    async def check() -> bool:
        db = Database(database_url)
        try:
            async with db.read() as session:
                mailbox = await find_mailbox(session, address)
                return mailbox is not None and await check_mailbox_password_async(mailbox, password)
        finally:
            await db.dispose()

    return asyncio.run(check())


def test_mailbox_passwd(mss, database_url: str, ans_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert mss("directory", "import-fhir", str(ans_data / API_MSS)).exit_code == 0
    result = mss(
        "mailbox", "passwd", DUPONT.upper(), "--password-stdin", input="correct horse battery\n"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"password of {DUPONT} changed\n"
    assert _password_ok(database_url, DUPONT, "correct horse battery")
    assert not _password_ok(database_url, DUPONT, "correct horse batterY")

    result = mss("mailbox", "passwd", DUPONT, input="first password 1\nfirst password 1\n")
    assert result.exit_code == 0, result.output
    assert "New password" in result.stderr and "first password 1" not in result.output
    assert _password_ok(database_url, DUPONT, "first password 1")

    one_error_line(
        mss("mailbox", "passwd", DUPONT, "--password-stdin", input="short\n"),
        "mss: the password has 5 characters; use at least 12",
    )
    one_error_line(
        mss(
            "mailbox",
            "passwd",
            "nobody@infirmier.mssante.fr",
            "--password-stdin",
            input="whatever password\n",
        ),
        "mss: no mailbox nobody@infirmier.mssante.fr in the directory",
    )
    one_error_line(
        mss("mailbox", "passwd", DUPONT, "--password-stdin", input=""),
        "mss: no password on standard input",
    )
    assert _password_ok(database_url, DUPONT, "first password 1")

    mss("directory", "import-patients", roster(tmp_path, GOOD[1]))
    one_error_line(
        mss(
            "mailbox",
            "passwd",
            f"{MOTHER}@patient.mss.localhost",
            "--password-stdin",
            input="a long enough password\n",
        ),
        f"mss: {MOTHER}@patient.mss.localhost is a patient mailbox: patients sign in "
        "to the portal, their mailbox has no password of its own",
    )
