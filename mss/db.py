"""The database engine: SQLite (embedded default) or PostgreSQL, one schema.

SQLite runs in WAL mode with foreign keys and a busy timeout, and every
write goes through one lock so the single writer never fails with
``database is locked``; a write transaction takes SQLite's write lock with
its first statement (``BEGIN IMMEDIATE``), so writers in several processes
are serialised too. PostgreSQL needs none of this.

SQLite statements normally run in the driver's thread (aiosqlite), so a
long query never stalls the event loop; but each statement then costs a
round trip through the loop, and a write transaction holds SQLite's one
write lock for all of those round trips. Inside ``Database.inline()`` (the
delivery writer, the job runner, the gateway's lookups: many small indexed
statements) they run directly on the loop's thread instead, where each takes
microseconds. An inline statement never blocks the loop on a lock another
process holds: it fails at once with SQLITE_BUSY, asks again every
millisecond or two for half a second (short sleeps on the loop), then runs
in the driver's thread, which waits for the busy timeout as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiosqlite
from sqlalchemy import (
    ColumnElement,
    DateTime,
    MetaData,
    Table,
    and_,
    bindparam,
    event,
    insert,
    tuple_,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from mss.errors import DatabaseUnavailable
from mss.metrics import watch_pool

T = TypeVar("T")
_unwinding: set[asyncio.Task[Any]] = set()

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model is mapped to a Table (DeclarativeBase types it as any FromClause), so
    # insert(Model.__table__), Model.__table__.update() and insert_ids type-check.
    __table__: ClassVar[Table]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use utcnow()")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


BUSY_TIMEOUT_MS = 10000
INLINE_BUSY_POLL = (
    0.5  # seconds an inline statement polls for a lock before waiting in the driver's thread
)
_inline: contextvars.ContextVar[bool] = contextvars.ContextVar("mss_sqlite_inline", default=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, extended codes included."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _SqliteConnection(aiosqlite.Connection):
    """aiosqlite, plus statements run on the caller's thread inside ``Database.inline()``.

    Calls on one connection never overlap (SQLAlchemy awaits each before the next),
    so the sqlite3 connection (opened with ``check_same_thread=False``) is used by
    one thread at a time. The busy timeout is 0 while statements run inline, so the
    loop never sleeps in SQLite's busy handler; it is set back before a statement
    runs in the driver's thread.
    """

    _busy_ms = BUSY_TIMEOUT_MS

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not _inline.get() or not self._running or self._connection is None:
            return await super()._execute(self._waiting_for_locks, fn, *args, **kwargs)
        if self._busy_ms:
            self._connection.execute("PRAGMA busy_timeout=0")
            self._busy_ms = 0
        # Another process may hold the write lock, for a few milliseconds as a rule. Then ask
        # again on the loop every millisecond or two: SQLite's own busy handler would sleep up
        # to 100 ms at a time. A statement refused as busy did nothing, so it can run again.
        loop = asyncio.get_running_loop()
        deadline, pause = None, 0.0005
        while deadline is None or loop.time() < deadline:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
            deadline = deadline or loop.time() + INLINE_BUSY_POLL
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.002)
        return await super()._execute(self._waiting_for_locks, fn, *args, **kwargs)

    def _waiting_for_locks(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """In the driver's thread: the usual busy timeout, then ``fn``."""
        if self._busy_ms != BUSY_TIMEOUT_MS and self._connection is not None:
            self._connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._busy_ms = BUSY_TIMEOUT_MS
        return fn(*args, **kwargs)


def _sqlite_creator(path: str) -> Callable[[], Coroutine[Any, Any, aiosqlite.Connection]]:
    def connector() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)

    async def create() -> aiosqlite.Connection:
        connection = _SqliteConnection(connector, 64)
        return await connection

    return create


class Database:
    """An engine, its session factory and, on SQLite, the single-writer lock."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # Connections kept open: SMTP sessions, job lanes and portal requests use many at once.
        # A SQLite connection opened past the pool (and closed on return) costs a thread and a
        # read of the schema, so SQLite keeps twice as many; a PostgreSQL server counts them.
        kept = 2 * pool_size if self.is_sqlite else pool_size
        kwargs: dict[str, Any] = {"echo": echo, "pool_size": kept, "max_overflow": kept}
        if self.is_sqlite:
            kwargs["async_creator"] = _sqlite_creator(parsed.database or ":memory:")
        else:
            kwargs.update(pool_pre_ping=True, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.pool_capacity = 2 * kept
        watch_pool(self.engine.sync_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None on PostgreSQL or in memory."""
        database = make_url(self.url).database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return Path(database)

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @staticmethod
    @contextlib.contextmanager
    def inline() -> Iterator[None]:
        """On SQLite, the block's statements run on the loop's thread (see the module docstring).

        For code that runs many small indexed statements; never around a query that
        may scan a large table. Without effect on PostgreSQL.
        """
        token = _inline.set(True)
        try:
            yield
        finally:
            _inline.reset(token)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; nothing it does is committed."""
        async with translate_db_errors(), self.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back on any error.

        On SQLite it starts with ``BEGIN IMMEDIATE``: the write lock is taken before
        the first read, so what the block reads cannot change under it even when
        another process (the job process, a CLI import) writes to the same file.
        """
        async with translate_db_errors():
            if self._write_lock is not None:
                async with self._write_lock, self.sessions() as session, session.begin():
                    await (await session.connection()).exec_driver_sql("BEGIN IMMEDIATE")
                    yield session
            else:
                async with self.sessions() as session, session.begin():
                    yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


@contextlib.asynccontextmanager
async def translate_db_errors() -> AsyncIterator[None]:
    """Turn a lost or refused connection into DatabaseUnavailable (SMTP 451, HTTP 503)."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable(
                f"the database connection was lost: {_first_line(exc)}"
            ) from exc
        raise
    except (TimeoutError, OSError, ConnectionError) as exc:
        raise DatabaseUnavailable(f"the database is unavailable: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


async def within(seconds: float, step: Coroutine[Any, Any, T]) -> T:
    """The step's result, or DatabaseUnavailable after ``seconds``.

    ``asyncio.timeout`` alone is not enough: cancelling a SQLite call waits for
    the driver thread (stuck in its busy handler) before the rollback can run,
    so the answer would come only after the busy timeout. Here the step runs as
    its own task; past the deadline it is cancelled and left to unwind in the
    background while the caller is already answered. It never committed, so a
    451 is honest.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.cancel()
    _unwinding.add(task)
    task.add_done_callback(_forget)
    raise DatabaseUnavailable(f"the database did not answer within {seconds:g} s")


def _forget(task: asyncio.Task[Any]) -> None:
    _unwinding.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def pairs_in(
    first: ColumnElement[Any], second: ColumnElement[Any], name: str
) -> ColumnElement[bool]:
    """``(first, second) IN :name``, written so that both engines use the two-column index.

    SQLite (3.40) answers a row-value ``IN`` list of two pairs or more by scanning the
    whole table. Each column is also tested ``IN`` its own values, which the index
    answers; the row-value test then keeps exactly the pairs asked for. The lists are
    expanding parameters (``pairs_values`` gives them): build the statement once, at
    import, and it is compiled once whatever the number of pairs.
    """
    return and_(
        first.in_(bindparam(f"{name}_first", expanding=True)),
        second.in_(bindparam(f"{name}_second", expanding=True)),
        tuple_(first, second).in_(bindparam(name, expanding=True)),
    )


def pairs_values(name: str, pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """The parameters of ``pairs_in(..., name)`` for these pairs."""
    return {
        f"{name}_first": sorted({a for a, _ in pairs}),
        f"{name}_second": sorted({b for _, b in pairs}),
        name: pairs,
    }


async def insert_ids(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` into ``table`` (integer key ``id``) with one multi-row statement; the new
    ids, in order.

    PostgreSQL answers ``RETURNING`` in the rows' order when asked (``sort_by_parameter_order``).
    SQLAlchemy cannot ask SQLite for that and then sends one INSERT per row; but SQLite gives
    each row of a multi-row INSERT, in the order of its VALUES, the next rowid (one more than the
    largest, under the database's single write lock), so there the ids sorted are in the rows'
    order.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "sqlite":
        return sorted(
            (await session.scalars(insert(table).returning(table.c.id), list(rows))).all()
        )
    return list(
        (
            await session.scalars(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)
            )
        ).all()
    )


def add_row(session: AsyncSession, model: type[Base], values: dict[str, Any]) -> Any:
    """Add a row of ``model`` to the transaction; inside ``inserting_in_bulk`` it waits for the
    block's end."""
    kept: list[dict[str, Any]] | None = session.sync_session.info.get(("bulk", model.__tablename__))
    row = model(**values)
    if kept is not None:
        kept.append(values)
    else:
        session.add(row)
    return row


@contextlib.asynccontextmanager
async def inserting_in_bulk(session: AsyncSession, model: type[Base]) -> AsyncIterator[None]:
    """Rows of ``model`` added with ``add_row`` in the block are inserted together, in order, at
    its end."""
    from sqlalchemy import insert

    key = ("bulk", model.__tablename__)
    info = session.sync_session.info
    info[key] = []
    try:
        yield
        rows = info[key]
        if rows:
            await session.execute(insert(model.__table__), rows)
    finally:
        info.pop(key, None)
