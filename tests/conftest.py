"""Shared fixtures: a freshly migrated database on each engine, settings in a temp dir.

Every test that asks for ``db`` runs twice, on SQLite and on PostgreSQL
(127.0.0.1:5432, trust auth). The schema is migrated once per engine per
run with Alembic into a template; each test gets a copy of it.
``MSS_TEST_ENGINES=sqlite`` restricts a local run to one engine; CI runs both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from mss.config import Settings
from mss.db import Database
from mss.migrate import upgrade

pytest_plugins = ["tests.fixtures_pki"]

PG_ADMIN = os.environ.get("MSS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = [
    e.strip()
    for e in os.environ.get("MSS_TEST_ENGINES", "sqlite,postgresql").split(",")
    if e.strip()
]
if os.environ.get("CI") and set(ENGINES) != {"sqlite", "postgresql"}:
    raise RuntimeError("CI must run the suite on both engines; unset MSS_TEST_ENGINES")

ANS_DATA = Path(__file__).resolve().parent / "data" / "ans"
RUN_ID = uuid.uuid4().hex[:8]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI nothing may be skipped: a skipped test fails the run, naming what to install."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for report in skipped:
            print(
                f"\nskipped in CI (install what it needs in .ci/run): {report.nodeid} "
                f"{report.longrepr}"
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _pg_url(dbname: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class _Templates:
    """Migrated template databases, one per engine, made on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sqlite: Path | None = None
        self.pg: str | None = None
        self.counter = 0

    def sqlite_copy(self) -> str:
        if self.sqlite is None:
            template = self.root / "template.sqlite3"
            upgrade(f"sqlite+aiosqlite:///{template}")
            self.sqlite = template
        self.counter += 1
        target = self.root / f"test{self.counter}.sqlite3"
        shutil.copyfile(self.sqlite, target)
        return f"sqlite+aiosqlite:///{target}"

    def pg_copy(self) -> tuple[str, str]:
        if self.pg is None:
            name = f"mss_test_{RUN_ID}_tmpl"
            try:
                asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
            except OSError as exc:
                raise RuntimeError(
                    f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}. "
                    "Start it or set MSS_TEST_ENGINES=sqlite for a local run."
                ) from exc
            upgrade(_pg_url(name).replace("postgresql://", "postgresql+asyncpg://"))
            self.pg = name
        self.counter += 1
        name = f"mss_test_{RUN_ID}_{self.counter}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.pg}"'))
        return name, _pg_url(name).replace("postgresql://", "postgresql+asyncpg://")

    def drop_all(self) -> None:
        async def drop() -> None:
            conn = await asyncpg.connect(PG_ADMIN)
            try:
                rows = await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname LIKE $1", f"mss_test_{RUN_ID}_%"
                )
                for row in rows:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
            finally:
                await conn.close()

        if self.pg is not None:
            asyncio.run(drop())


@pytest.fixture(scope="session", autouse=True)
def follow_ups_registered() -> None:
    """Every part's follow-ups, as ``mss serve`` registers them where a hub starts: a test that
    builds a gateway delivers as the hub does (``mss.followups``)."""
    from mss.serve import register_follow_ups

    register_follow_ups()


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    templates = _Templates(tmp_path_factory.mktemp("db"))
    yield templates
    templates.drop_all()


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, db_templates: _Templates) -> Iterator[str]:
    """The URL of a freshly migrated, empty database (one per test, per engine)."""
    if request.param == "sqlite":
        yield db_templates.sqlite_copy()
        return
    name, url = db_templates.pg_copy()
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for a hub living in tmp_path, on the test's database, with free ports."""
    s = Settings()
    s.data_dir = str(tmp_path / "var")
    s.database_url = database_url
    for name in ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "https"):
        setattr(s.ports, name, 0)
    s.listeners.smtp_processes = 1  # not "auto": a test that wants more SMTP processes says so
    s.listeners.https_processes = 1  # likewise for HTTPS
    # Each notice goes out when its job runs; the tests of grouping set a window themselves.
    s.notifications.group_seconds = 0
    return s


@pytest.fixture(scope="session")
def ans_data() -> Path:
    """The published French and Direct Project sample documents kept in tests/data/ans."""
    return ANS_DATA
