"""The schema migrates on both engines and matches the models."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from mss.db import Database
from mss.directory.models import Organisation
from mss.schema import metadata


async def test_migrations_match_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    assert diff == [], f"models and migrations differ: {diff}"


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    when = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    async with db.write() as session:
        session.add(Organisation(name="Clinique", created_at=when))
    async with db.read() as session:
        org = (await session.scalars(select(Organisation))).one()
    assert org.created_at == when
    assert org.created_at.tzinfo == dt.UTC


async def test_write_rolls_back_on_error(db: Database) -> None:
    try:
        async with db.write() as session:
            session.add(Organisation(name="Clinique"))
            await session.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with db.read() as session:
        count = (await session.execute(text("SELECT count(*) FROM organisations"))).scalar_one()
    assert count == 0
