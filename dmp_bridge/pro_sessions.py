"""Professionals' browser sessions after an OpenID Connect login (``dmp_bridge.pro_login``).

The cookie holds a random token; the table keeps only its SHA-256. A login
begins ``pending``: the row keeps the authorization request's state, nonce and
PKCE verifier for 10 minutes and is taken (deleted, once) when the browser
comes back; the login then makes a new ``signed_in`` row with a new token
(rotation) for ``[oidc] session_minutes``. Every process sees the same rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import ForeignKey, Index, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow
from mss.oidc import LoginStart

COOKIE = "__Host-mss_pro"  # __Host-: Secure, Path=/, no Domain, enforced by browsers
PENDING, SIGNED_IN = "pending", "signed_in"
PENDING_LIFETIME = dt.timedelta(minutes=10)


class ProfessionalSession(Base):
    """One browser's OpenID Connect login: pending (state, nonce, verifier), then signed in."""

    __tablename__ = "professional_sessions"
    __table_args__ = (Index("ix_professional_sessions_expires_at", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))  # pending, signed_in
    state: Mapped[str | None] = mapped_column(String(64))
    nonce: Mapped[str | None] = mapped_column(String(64))
    code_verifier: Mapped[str | None] = mapped_column(String(128))
    professional_id: Mapped[int | None] = mapped_column(
        ForeignKey("professionals.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    acr: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_pending(
    session: AsyncSession, login: LoginStart, now: dt.datetime, source: str
) -> str:
    """Keep a login's state, nonce and verifier; returns the cookie token. Clears expired rows."""
    await session.execute(delete(ProfessionalSession).where(ProfessionalSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        ProfessionalSession(
            token_hash=hash_token(token),
            stage=PENDING,
            state=login.state,
            nonce=login.nonce,
            code_verifier=login.code_verifier,
            csrf_token=secrets.token_urlsafe(32),
            source=source[:255],
            created_at=now,
            expires_at=now + PENDING_LIFETIME,
        )
    )
    return token


async def take_pending(
    session: AsyncSession, token: str, state: str, now: dt.datetime
) -> ProfessionalSession | None:
    """The pending login of this cookie if ``state`` is its own; taken once (deleted) either way.

    A wrong state spends the pending login too: the browser must start again.
    """
    row = (
        await session.execute(
            delete(ProfessionalSession)
            .where(
                ProfessionalSession.token_hash == hash_token(token),
                ProfessionalSession.stage == PENDING,
            )
            .returning(ProfessionalSession)
        )
    ).scalar_one_or_none()
    if row is None or row.expires_at <= now or row.state is None:
        return None
    if not hmac.compare_digest(row.state.encode(), state.encode()):
        return None
    return row


async def sign_in(
    session: AsyncSession,
    professional_id: int,
    acr: str,
    now: dt.datetime,
    lifetime: dt.timedelta,
    source: str,
) -> tuple[str, ProfessionalSession]:
    """A signed-in session for the professional, with a new token; returns the token and row."""
    token = secrets.token_urlsafe(32)
    row = ProfessionalSession(
        token_hash=hash_token(token),
        stage=SIGNED_IN,
        professional_id=professional_id,
        csrf_token=secrets.token_urlsafe(32),
        acr=acr[:64],
        source=source[:255],
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    return token, row


async def signed_in(
    session: AsyncSession, token: str, now: dt.datetime
) -> ProfessionalSession | None:
    """The live signed-in session of this cookie token, if any."""
    row = (
        await session.scalars(
            select(ProfessionalSession).where(
                ProfessionalSession.token_hash == hash_token(token),
                ProfessionalSession.stage == SIGNED_IN,
            )
        )
    ).first()
    if row is None or row.expires_at <= now or row.professional_id is None:
        return None
    return row


async def end(session: AsyncSession, token: str) -> int | None:
    """Remove the session of this token; returns its professional's id, if it was signed in."""
    row = (
        await session.execute(
            delete(ProfessionalSession)
            .where(ProfessionalSession.token_hash == hash_token(token))
            .returning(ProfessionalSession.professional_id)
        )
    ).first()
    return row[0] if row is not None else None
