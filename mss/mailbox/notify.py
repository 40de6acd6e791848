"""Change notification: wake IMAP sessions when a mailbox changes.

A writer calls :func:`mark_changed` inside its transaction. After the
commit, every waiter of this process on that mailbox is woken (the
SQLAlchemy ``after_commit`` hook); a rollback forgets the change. On
PostgreSQL the same transaction also runs ``pg_notify``, which the server
delivers at commit to every hub process listening on the channel (see
:class:`PostgresListener`), so a delivery in one process wakes an IDLE
client connected to another.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "mss_mailbox_changes"
PROCESS_TOKEN = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
_INFO_KEY = "mss.mailbox.changed"


def database_key(url: Any) -> str:
    """One key per database, the same for every engine opened on it."""
    parsed = make_url(str(url)) if not hasattr(url, "render_as_string") else url
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)


class ChangeWaiters:
    """Process-wide registry of the sessions waiting on each mailbox of each database."""

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, int], set[asyncio.Event]] = defaultdict(set)

    def register(self, db_key: str, mailbox_id: int) -> asyncio.Event:
        """An event set whenever the mailbox changes; pass it to :meth:`unregister` when done."""
        wake = asyncio.Event()
        self._waiters[(db_key, mailbox_id)].add(wake)
        return wake

    def unregister(self, db_key: str, mailbox_id: int, wake: asyncio.Event) -> None:
        waiters = self._waiters.get((db_key, mailbox_id))
        if waiters is not None:
            waiters.discard(wake)
            if not waiters:
                del self._waiters[(db_key, mailbox_id)]

    def wake(self, db_key: str, mailbox_id: int) -> None:
        for wake in self._waiters.get((db_key, mailbox_id), ()):
            wake.set()


waiters = ChangeWaiters()


async def mark_changed(session: AsyncSession, mailbox_id: int) -> None:
    """Record that ``mailbox_id`` changed in this transaction; waiters wake after the commit."""
    changed: set[int] = session.sync_session.info.setdefault(_INFO_KEY, set())
    if mailbox_id in changed:
        return
    changed.add(mailbox_id)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": f"{PROCESS_TOKEN} {mailbox_id}"},
        )


async def mark_changed_many(session: AsyncSession, mailbox_ids: Iterable[int]) -> None:
    """:func:`mark_changed` for several mailboxes, with one ``pg_notify`` statement for all."""
    changed: set[int] = session.sync_session.info.setdefault(_INFO_KEY, set())
    new = sorted(set(mailbox_ids) - changed)
    if not new:
        return
    changed.update(new)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text(
                "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[]))"
                " AS payload"
            ),
            {"channel": CHANNEL, "payloads": [f"{PROCESS_TOKEN} {m}" for m in new]},
        )


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    changed = session.info.pop(_INFO_KEY, None)
    if not changed:
        return
    key = database_key(session.get_bind().engine.url)  # an Engine or a Connection
    for mailbox_id in changed:
        waiters.wake(key, mailbox_id)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


class PostgresListener:
    """A dedicated asyncpg connection LISTENing for changes made by other hub processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = database_key(url)
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and listen; reconnects in the background if the connection is lost."""
        await self._connect()
        self._task = asyncio.create_task(self._watch())

    async def _connect(self) -> None:
        import asyncpg

        parsed = make_url(self.url)
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(CHANNEL, self._on_notify)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        token, _, mailbox = payload.partition(" ")
        if token == PROCESS_TOKEN or not mailbox.isdigit():
            return  # this process already woke its own sessions after the commit
        waiters.wake(self.key, int(mailbox))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(5)
            if self._conn is not None and not self._conn.is_closed():
                continue
            try:
                await self._connect()
                log.info("change listener reconnected to PostgreSQL")
            except (OSError, Exception) as exc:  # noqa: BLE001 - keep retrying, never crash the server
                log.warning("change listener cannot reconnect: %s", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
