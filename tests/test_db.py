"""The schema migrates on both engines and matches the models."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, select, text

from mss.db import Database
from mss.directory.models import Organisation
from mss.schema import metadata


async def test_migrations_match_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
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


async def test_inline_statements_run_on_the_loop_thread(tmp_path: Path) -> None:
    """Inside Database.inline() a SQLite statement runs on the caller's thread, outside it in the
    driver's."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.sqlite3'}")

    def thread_function(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("thread_id", 0, threading.get_ident)

    event.listen(db.engine.sync_engine, "connect", thread_function)
    query = text("SELECT thread_id()")
    try:
        with db.inline():
            async with db.read() as session:
                inline = (await session.execute(query)).scalar_one()
        async with db.read() as session:
            threaded = (await session.execute(query)).scalar_one()
    finally:
        await db.dispose()
    assert inline == threading.get_ident()
    assert threaded != threading.get_ident()


async def test_inline_write_waits_for_another_process_off_the_loop(tmp_path: Path) -> None:
    """Another process holding SQLite's write lock: the inline write waits in the driver's thread.

    The event loop keeps running meanwhile (it would sleep in SQLite's busy handler
    otherwise), and the write lands once the lock is released.
    """
    path = tmp_path / "busy.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None)  # another writer, as `mss` CLI would be
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def write() -> None:
        with db.inline():
            async with db.write() as session:
                await session.execute(text("INSERT INTO t VALUES (42)"))

    clock = asyncio.create_task(ticker())
    try:
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.5)
        assert not writing.done(), "the write went through while another process held the lock"
        assert ticks >= 20, f"the event loop stalled: {ticks} ticks in 0.5 s"
        other.execute("ROLLBACK")
        await asyncio.wait_for(writing, 5)
        async with db.read() as session:
            assert (await session.execute(text("SELECT x FROM t"))).scalars().all() == [42]
    finally:
        clock.cancel()
        other.close()
        await db.dispose()


async def test_pairs_in_finds_pairs_through_the_index(db: Database) -> None:
    """pairs_in selects exactly the pairs asked for; on SQLite, through the two-column index, not
    a scan."""
    from sqlalchemy import insert

    from mss.db import pairs_in, pairs_values, utcnow
    from mss.directory.models import Mailbox, MailboxKind
    from mss.mailbox.models import Folder

    async with db.write() as session:
        session.add_all(
            [Mailbox(address=f"m{i}@mss.localhost", kind=MailboxKind.PER) for i in range(3)]
        )
        await session.flush()
        ids = list(await session.scalars(select(Mailbox.id).order_by(Mailbox.id)))
        await session.execute(
            insert(Folder.__table__),
            [
                {
                    "mailbox_id": m,
                    "name": name,
                    "uidvalidity": 1,
                    "uidnext": 1,
                    "highest_modseq": 1,
                    "created_at": utcnow(),
                }
                for m in ids
                for name in ("INBOX", "Sent")
            ],
        )
    query = select(Folder.mailbox_id, Folder.name).where(
        pairs_in(Folder.mailbox_id, Folder.name, "wanted")
    )
    sent: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    async with db.read() as session:
        for wanted in ([(ids[0], "INBOX"), (ids[2], "Sent")], [(ids[1], "Sent")], []):
            found = await session.execute(query, pairs_values("wanted", wanted))
            assert (
                sorted(tuple(row) for row in found) == wanted
            )  # not (ids[0], "Sent") nor (ids[2], "INBOX")
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)
        if db.is_sqlite:  # the plan of the statement sent for two pairs
            statement, parameters = sent[0]
            assert statement.startswith("SELECT folders.mailbox_id"), statement
            explained = await (await session.connection()).exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters
            )
            plan = [row[3] for row in explained]
            assert not any(step.startswith("SCAN folders") for step in plan), plan


async def test_sqlite_write_holds_the_write_lock_from_its_first_read(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: what a write transaction reads cannot change under it, even from another
    process."""
    path = tmp_path / "immediate.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None, timeout=0)  # another process's writer
    try:
        async with db.write() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 0
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")  # refused: the lock was taken before the read
            await session.execute(text("INSERT INTO t VALUES (1)"))
        other.execute("BEGIN IMMEDIATE")  # the transaction ended: the lock is free again
        other.execute("INSERT INTO t VALUES (2)")
        other.execute("COMMIT")
        async with db.read() as session:
            assert sorted((await session.execute(text("SELECT x FROM t"))).scalars()) == [1, 2]
    finally:
        other.close()
        await db.dispose()


async def test_sqlite_keeps_its_connections_when_many_sessions_run_at_once(tmp_path: Path) -> None:
    """Sixteen sessions at once, four times: sixteen connections opened, none reopened."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}")
    opened: list[int] = []
    event.listen(db.engine.sync_engine, "connect", lambda *_args: opened.append(1))

    async def session() -> None:
        async with db.read() as reading:
            await reading.execute(text("SELECT 1"))
            await asyncio.sleep(0.01)  # all sixteen hold a connection at the same time

    try:
        for _ in range(4):
            await asyncio.gather(*(session() for _ in range(16)))
        assert len(opened) == 16
    finally:
        await db.dispose()


async def test_insert_ids_is_one_statement_and_keeps_the_rows_order(db: Database) -> None:
    """``insert_ids``: one multi-row INSERT on both engines, and each id is its own row's."""
    from mss.db import insert_ids

    table = Organisation.__table__
    async with db.write() as session:  # rows already there, and a gap, so ids are not 1..n
        first = await insert_ids(
            session, table, [{"name": "avant", "created_at": dt.datetime.now(dt.UTC)}] * 3
        )
        await session.execute(table.delete().where(table.c.id == first[1]))
    names = [f"org {n}" for n in (5, 1, 4, 2, 3, 9, 7)]
    sent: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with db.write() as session:
            ids = await insert_ids(
                session,
                table,
                [{"name": name, "created_at": dt.datetime.now(dt.UTC)} for name in names],
            )
            assert await insert_ids(session, table, []) == []
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)
    inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1 and inserts[0].count("?") + inserts[0].count("$") >= 2 * len(names)
    async with db.read() as session:
        stored = dict(
            (
                await session.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids)))
            ).all()
        )
    assert [stored[i] for i in ids] == names and min(ids) > max(first)
