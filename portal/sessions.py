"""Server-side sessions: the cookie holds a random token, the table its SHA-256.

A session starts anonymous (it carries the CSRF token of the login form),
becomes ``second_factor`` after the password and ``signed_in`` after the
code; each step replaces the row and the token (rotation), so a token seen
before the login is worthless after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import Database
from mss.directory.models import Patient
from mss.directory.store import MailboxStamp, mailbox_stamp_of, patient_mailbox_stamp_columns
from mss.patients import with_patient_and_minors
from portal.models import PortalSession

COOKIE = "__Host-mss_portal"  # __Host-: Secure, Path=/, no Domain, enforced by browsers
ANONYMOUS, SECOND_FACTOR, SIGNED_IN = "anonymous", "second_factor", "signed_in"
# Activity is written at most this often (and at most every tenth of the idle limit), so a
# session may end up to that much early; reading a page is then no write at all.
TOUCH_INTERVAL = dt.timedelta(seconds=30)
# Built once (a select() built per call costs more than running it); the directory's side, the
# patient and the minors held, is joined by mss.patients.
# The space's mailbox and its stamp (mss.directory.store.patient_mailbox_stamp_columns) come
# along: the inbox then needs no statement of its own to know its kept list is still right.
_SPACE = func.coalesce(PortalSession.space_patient_id, PortalSession.patient_id)
_LOAD = (
    with_patient_and_minors(PortalSession, PortalSession.patient_id)
    .add_columns(*patient_mailbox_stamp_columns(_SPACE))
    .where(PortalSession.token_hash == bindparam("token_hash"))
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_row(now: dt.datetime, source: str, **values: Any) -> tuple[str, PortalSession]:
    token = secrets.token_urlsafe(32)
    row = PortalSession(
        token_hash=hash_token(token),
        csrf_token=secrets.token_urlsafe(32),
        stage=ANONYMOUS,
        factor="",
        source=source[:255],
        created_at=now,
        last_seen_at=now,
    )
    for name, value in values.items():
        setattr(row, name, value)
    return token, row


@dataclass
class Loaded:
    """A session row with the patient it names and the minors that patient holds (by name)."""

    row: PortalSession
    patient: Patient | None = None
    minors: list[Patient] = field(default_factory=list)
    # The PAT mailbox (with its stamp) of the space the row names, read with it: the space
    # shown is that one only when the signed-in guard finds it still held.
    space_mailbox: MailboxStamp | None = None


async def load(db: Database, token: str) -> Loaded | None:
    """The session of this cookie token and who it names, in one statement (one row per minor
    held)."""
    async with db.read() as session:
        rows = (await session.execute(_LOAD, {"token_hash": hash_token(token)})).all()
    if not rows:
        return None
    row, patient, _minor, *stamp = rows[0]
    return Loaded(
        row,
        patient,
        [held for _row, _patient, held, *_stamp in rows if held is not None],
        mailbox_stamp_of(stamp),
    )


async def start_anonymous(db: Database, now: dt.datetime, source: str) -> tuple[str, PortalSession]:
    """A new anonymous session; returns the cookie token and the row."""
    token, row = _new_row(now, source)
    async with db.write() as session:
        session.add(row)
    return token, row


async def rotate(
    session: AsyncSession, old: PortalSession | None, now: dt.datetime, source: str, **values: Any
) -> tuple[str, PortalSession]:
    """Replace ``old`` by a new row (new token, new CSRF token) carrying ``values``."""
    if old is not None:
        await session.execute(
            delete(PortalSession).where(PortalSession.token_hash == old.token_hash)
        )
    token, row = _new_row(now, source, **values)
    session.add(row)
    return token, row


async def current(session: AsyncSession, row: PortalSession) -> PortalSession | None:
    """The row again inside a write transaction (None if it was ended meanwhile)."""
    return await session.get(PortalSession, row.token_hash, with_for_update=True)


async def touch(db: Database, row: PortalSession, now: dt.datetime, idle: dt.timedelta) -> None:
    """Record activity, unless it was recorded less than ``TOUCH_INTERVAL`` (or idle / 10) ago."""
    if now - row.last_seen_at < min(TOUCH_INTERVAL, idle / 10):
        return
    async with db.write() as session:
        await session.execute(
            update(PortalSession)
            .where(PortalSession.token_hash == row.token_hash)
            .values(last_seen_at=now)
        )
    row.last_seen_at = now


async def end(db: Database, row: PortalSession) -> None:
    async with db.write() as session:
        await session.execute(
            delete(PortalSession).where(PortalSession.token_hash == row.token_hash)
        )


async def purge_idle(session: AsyncSession, now: dt.datetime, idle: dt.timedelta) -> None:
    """Forget every session idle for longer than ``idle`` (they can no longer be used)."""
    stale = select(PortalSession.token_hash).where(PortalSession.last_seen_at < now - idle)
    await session.execute(delete(PortalSession).where(PortalSession.token_hash.in_(stale)))
