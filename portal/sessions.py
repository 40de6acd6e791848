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
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import Database
from portal.models import PortalSession

COOKIE = "__Host-mss_portal"  # __Host-: Secure, Path=/, no Domain, enforced by browsers
ANONYMOUS, SECOND_FACTOR, SIGNED_IN = "anonymous", "second_factor", "signed_in"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_row(now: dt.datetime, source: str, **values: Any) -> tuple[str, PortalSession]:
    token = secrets.token_urlsafe(32)
    row = PortalSession(token_hash=hash_token(token), csrf_token=secrets.token_urlsafe(32),
                        stage=ANONYMOUS, factor="", source=source[:255], created_at=now,
                        last_seen_at=now)
    for name, value in values.items():
        setattr(row, name, value)
    return token, row


async def load(db: Database, token: str) -> PortalSession | None:
    async with db.read() as session:
        return await session.get(PortalSession, hash_token(token))


async def start_anonymous(db: Database, now: dt.datetime, source: str) -> tuple[str, PortalSession]:
    """A new anonymous session; returns the cookie token and the row."""
    token, row = _new_row(now, source)
    async with db.write() as session:
        session.add(row)
    return token, row


async def rotate(session: AsyncSession, old: PortalSession | None, now: dt.datetime, source: str,
                 **values: Any) -> tuple[str, PortalSession]:
    """Replace ``old`` by a new row (new token, new CSRF token) carrying ``values``."""
    if old is not None:
        await session.execute(delete(PortalSession).where(PortalSession.token_hash == old.token_hash))
    token, row = _new_row(now, source, **values)
    session.add(row)
    return token, row


async def current(session: AsyncSession, row: PortalSession) -> PortalSession | None:
    """The row again inside a write transaction (None if it was ended meanwhile)."""
    return await session.get(PortalSession, row.token_hash, with_for_update=True)


async def touch(db: Database, row: PortalSession, now: dt.datetime) -> None:
    """Record activity; skipped within 5 seconds of the last one to spare the single writer."""
    if now - row.last_seen_at < dt.timedelta(seconds=5):
        return
    async with db.write() as session:
        found = await session.get(PortalSession, row.token_hash)
        if found is not None:
            found.last_seen_at = now


async def end(db: Database, row: PortalSession) -> None:
    async with db.write() as session:
        await session.execute(delete(PortalSession).where(PortalSession.token_hash == row.token_hash))


async def purge_idle(session: AsyncSession, now: dt.datetime, idle: dt.timedelta) -> None:
    """Forget every session idle for longer than ``idle`` (they can no longer be used)."""
    stale = select(PortalSession.token_hash).where(PortalSession.last_seen_at < now - idle)
    await session.execute(delete(PortalSession).where(PortalSession.token_hash.in_(stale)))
