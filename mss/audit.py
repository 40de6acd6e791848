"""Audit events: every access and change, readable by the patient it concerns.

Every event is sealed into a chain as it is written (``mss.audit_chain``): the
ORM path when the session flushes it, ``recording_in_bulk`` when its block ends.

An event that records nothing but an access (a page read) need not take a write
transaction of its own: ``record_committed`` hands it to the process's audit
writer, which seals and inserts the events ready at the same moment in one
transaction (``mss.group_commit``) and returns once that transaction committed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    insert,
    inspect,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from mss.audit_chain import CHAIN_LENGTH, HASHED_FIELDS, AuditChainHead, seal
from mss.db import Base, Database, UTCDateTime, add_row, utcnow
from mss.group_commit import GroupCommit, group_commit

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "patient_events",
    "record",
    "record_committed",
    "recording_in_bulk",
]
# How long a reader waits for its audit line to commit before the page fails (DatabaseUnavailable).
COMMIT_TIMEOUT = 10.0


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_patient_at", "patient_id", "at"),
        UniqueConstraint("chain", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(
        String(32)
    )  # professional, patient, guardian, system, operator
    actor: Mapped[str] = mapped_column(String(320))
    on_behalf_of: Mapped[str | None] = mapped_column(String(320))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    target: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The seal (mss.audit_chain): set when the event is written, never by the caller.
    chain: Mapped[str] = mapped_column(String(CHAIN_LENGTH))
    seq: Mapped[int]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


async def patient_events(
    session: AsyncSession,
    patient_id: int,
    *,
    starting: Sequence[str] = (),
    not_starting: Sequence[str] = (),
    since: dt.datetime | None = None,
    before: dt.datetime | None = None,
    limit: int,
    offset: int = 0,
) -> Sequence[AuditEvent]:
    """The events of one patient, newest first (one statement): those whose action starts with
    one of ``starting`` (any action when it is empty) and with none of ``not_starting``, at or
    after ``since`` and before ``before``; ``limit`` of them from ``offset``."""
    query = select(AuditEvent).where(AuditEvent.patient_id == patient_id)
    if starting:
        query = query.where(or_(*[AuditEvent.action.startswith(p) for p in starting]))
    if not_starting:
        query = query.where(not_(or_(*[AuditEvent.action.startswith(p) for p in not_starting])))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if before is not None:
        query = query.where(AuditEvent.at < before)
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)
    return (await session.scalars(query)).all()


async def has_event(session: AsyncSession, patient_id: int, action: str, target: str) -> bool:
    """Is there an event of this action and target in the patient's history?"""
    found = await session.scalars(
        select(AuditEvent.id).where(
            AuditEvent.patient_id == patient_id,
            AuditEvent.action == action,
            AuditEvent.target == target,
        )
    )
    return found.first() is not None


def record(
    session: AsyncSession,
    action: str,
    *,
    actor_kind: str,
    actor: str,
    patient_id: int | None = None,
    target: str = "",
    source: str = "",
    on_behalf_of: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to the caller's transaction, so it commits with what it records.

    Inside ``recording_in_bulk`` the event is kept aside and written with the others
    in one statement when the block ends. Either way it is sealed into its chain when
    written, so a change to the returned object after the flush breaks the seal.
    """
    values = {
        "action": action,
        "actor_kind": actor_kind,
        "actor": actor,
        "patient_id": patient_id,
        "target": target,
        "source": source,
        "on_behalf_of": on_behalf_of,
        "detail": detail,
        "at": utcnow(),
    }
    row: AuditEvent = add_row(session, AuditEvent, values)
    return row


@contextlib.asynccontextmanager
async def recording_in_bulk(session: AsyncSession) -> AsyncIterator[None]:
    """Audit events recorded in the block are sealed and inserted together, in order, when it ends.

    Three statements whatever their number: the heads of their chains taken, one
    multi-row insert, the heads moved on.
    """
    key = ("bulk", AuditEvent.__tablename__)
    info = session.sync_session.info
    info[key] = []
    try:
        yield
        rows: list[dict[str, Any]] = info[key]
        if rows:
            await session.run_sync(lambda sync: seal(sync.connection(), rows))
            await session.execute(insert(AuditEvent.__table__), rows)
    finally:
        info.pop(key, None)


async def record_committed(
    db: Database,
    action: str,
    *,
    actor_kind: str,
    actor: str,
    patient_id: int | None = None,
    target: str = "",
    source: str = "",
    on_behalf_of: str | None = None,
    **detail: Any,
) -> None:
    """``record`` in a transaction shared with the other events ready now; returns once committed.

    The caller answers only after this returns, so an access it reports is in the history even
    if the hub is killed the next moment.
    """
    fields: dict[str, Any] = {
        "actor_kind": actor_kind,
        "actor": actor,
        "patient_id": patient_id,
        "target": target,
        "source": source,
        "on_behalf_of": on_behalf_of,
    }
    await audit_writer(db).submit((action, fields, detail), COMMIT_TIMEOUT)


def audit_writer(db: Database) -> GroupCommit[Any, None]:
    """The process's audit writer on ``db`` (its ``stats`` say how the events were batched)."""
    return group_commit(db, "audit.events", _write_events)


async def _write_events(
    session: AsyncSession, events: Sequence[tuple[str, dict[str, Any], dict[str, Any]]]
) -> list[None]:
    """One batch of the audit writer: sealed and inserted together (three statements)."""
    async with recording_in_bulk(session):
        for action, fields, detail in events:
            record(session, action, **fields, **detail)
    return [None] * len(events)


_DEFAULTS: dict[str, Any] = {"target": "", "source": ""}


@event.listens_for(Session, "before_flush")
def _seal_flushed_events(session: Session, _context: Any, _instances: Any) -> None:
    """Seal the new events of this flush, in the order they were added, before they are inserted."""
    pending = [obj for obj in session.new if isinstance(obj, AuditEvent) and obj.hash is None]
    if not pending:
        return
    pending.sort(key=lambda obj: inspect(obj).insert_order)
    events: list[dict[str, Any]] = []
    for obj in pending:
        if obj.at is None:
            obj.at = utcnow()
        if obj.detail is None:
            obj.detail = {}
        for name, default in _DEFAULTS.items():
            if getattr(obj, name) is None:
                setattr(obj, name, default)
        events.append({name: getattr(obj, name) for name in (*HASHED_FIELDS, "patient_id")})
    seal(session.connection(), events)
    for obj, sealed in zip(pending, events, strict=True):
        for name in ("detail", "chain", "seq", "prev_hash", "hash"):
            setattr(obj, name, sealed[name])
