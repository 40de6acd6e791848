"""Audit events: every access and change, readable by the patient it concerns."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, add_row, inserting_in_bulk, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_patient_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(32))  # professional, patient, guardian, system, operator
    actor: Mapped[str] = mapped_column(String(320))
    on_behalf_of: Mapped[str | None] = mapped_column(String(320))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    target: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def record(session: AsyncSession, action: str, *, actor_kind: str, actor: str,
           patient_id: int | None = None, target: str = "", source: str = "",
           on_behalf_of: str | None = None, **detail: Any) -> AuditEvent:
    """Add an audit event to the caller's transaction, so it commits with what it records.

    Inside ``recording_in_bulk`` the event is kept aside and written with the others
    in one statement when the block ends.
    """
    values = {"action": action, "actor_kind": actor_kind, "actor": actor, "patient_id": patient_id,
              "target": target, "source": source, "on_behalf_of": on_behalf_of, "detail": detail,
              "at": utcnow()}
    event: AuditEvent = add_row(session, AuditEvent, values)
    return event


def recording_in_bulk(session: AsyncSession) -> contextlib.AbstractAsyncContextManager[None]:
    """Audit events recorded in the block are inserted together, in order, when it ends."""
    return inserting_in_bulk(session, AuditEvent)
