"""The database engine: SQLite (embedded default) or PostgreSQL, one schema.

SQLite runs in WAL mode with foreign keys and a busy timeout, and every
write goes through one lock so the single writer never fails with
``database is locked``. PostgreSQL needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, event
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

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """An engine, its session factory and, on SQLite, the single-writer lock."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 10}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                          pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
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

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; nothing it does is committed."""
        async with translate_db_errors(), self.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back on any error."""
        async with translate_db_errors():
            if self._write_lock is not None:
                async with self._write_lock, self.sessions() as session, session.begin():
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
            raise DatabaseUnavailable(f"the database connection was lost: {_first_line(exc)}") from exc
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


def add_row(session: AsyncSession, model: type[Base], values: dict[str, Any]) -> Any:
    """Add a row of ``model`` to the transaction; inside ``inserting_in_bulk`` it waits for the block's end."""
    kept: list[dict[str, Any]] | None = session.sync_session.info.get(("bulk", model.__tablename__))
    row = model(**values)
    if kept is not None:
        kept.append(values)
    else:
        session.add(row)
    return row


@contextlib.asynccontextmanager
async def inserting_in_bulk(session: AsyncSession, model: type[Base]) -> AsyncIterator[None]:
    """Rows of ``model`` added with ``add_row`` in the block are inserted together, in order, at its end."""
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
