"""The portal's own table: server-side sessions (failed logins are ``mss.login_throttle``).

The session cookie holds a random token; the table keeps only its SHA-256,
so a copy of the database does not hand out live sessions.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow


class PortalSession(Base):
    """One browser's session: anonymous (for the login form's CSRF token), half or fully signed
    in."""

    __tablename__ = "portal_sessions"
    __table_args__ = (Index("ix_portal_sessions_last_seen_at", "last_seen_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(
        String(16), default="anonymous"
    )  # anonymous, second_factor, signed_in
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    space_patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE")
    )
    factor: Mapped[str] = mapped_column(String(8), default="")  # sms, email, totp
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    code_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pending_totp_secret: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
