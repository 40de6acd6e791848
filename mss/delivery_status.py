"""Each sent message's delivery status, per recipient: a small store fed by the hub's own events.

One row per (Message-ID, recipient) holds the latest state (``mss.policy.delivery_status``
says which change is allowed). The events that feed it are those that already happen on
the one message path, nothing is sent or read twice:

- delivery (``mss.smtp_gateway.delivery``): ``delivered`` for a local recipient,
  ``relayed`` for another operator's, written with the delivery's own multi-row statements;
- the DSN job (``mss.smtp_gateway.bounces``): ``failed`` with the enhanced status;
- the DMP filing job (``dmp_bridge.filing``): ``filed``, or ``failed`` with the IG's 90x code;
- the portal's read (``portal.views.message``, which sends the read receipt): ``displayed``;
- a report that comes back (``mss.smtp_gateway.reports``, a follow-up of the delivery of
  an MDN or a DSN to a hub mailbox): ``displayed``, ``dispatched``, ``filed``, ``failed``.

Rows name the sender's address, so a sender reads only its own (``statuses_of``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Index, Integer, String, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow
from mss.policy.delivery_status import (
    decide_status_change,
    states_before,
    status_sentence_fr,
)

MAX_ID = 998


class DeliveryStatus(Base):
    """The latest status of one message for one recipient."""

    __tablename__ = "delivery_statuses"
    __table_args__ = (Index("ix_delivery_statuses_message", "message_id", "recipient"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(MAX_ID))  # the Message-ID header, <...>
    sender: Mapped[str] = mapped_column(String(320), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(16), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    detail_fr: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class RecipientStatus:
    """What a sender may read of one recipient's status."""

    recipient: str
    state: str
    code: str
    detail: str
    detail_fr: str
    updated_at: dt.datetime

    @property
    def sentence_fr(self) -> str:
        return status_sentence_fr(self.state, self.detail_fr, self.code)


def status_row(
    message_id: str, sender: str, recipient: str, state: str, now: dt.datetime | None = None
) -> dict[str, object]:
    """A new row (for ``insert_statuses``): the first status of a message for a recipient."""
    return {
        "message_id": message_id[:MAX_ID],
        "sender": sender.lower(),
        "recipient": recipient.lower(),
        "state": state,
        "code": "",
        "detail": "",
        "detail_fr": "",
        "updated_at": now or utcnow(),
    }


async def insert_statuses(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """The first statuses of a batch of deliveries, in one statement (none without rows)."""
    if rows:
        await session.execute(insert(DeliveryStatus.__table__), list(rows))


async def record_status(
    session: AsyncSession,
    *,
    message_id: str,
    recipient: str,
    state: str,
    sender: str = "",
    code: str = "",
    detail: str = "",
    detail_fr: str = "",
    only_known: bool = False,
) -> bool:
    """Move (or start) the status of ``message_id`` for ``recipient``; False when the change
    is not allowed (stale, after a failure) or the message has no Message-ID.

    ``only_known``: move a status the hub already keeps for ``sender``, never start one
    (a report that comes back speaks of a message the hub saw leave).
    """
    message_id, recipient = message_id.strip()[:MAX_ID], recipient.strip().lower()
    if not message_id or not recipient or not decide_status_change(None, state).allowed:
        return False
    table = DeliveryStatus.__table__
    mine = [table.c.message_id == message_id, table.c.recipient == recipient]
    if only_known:
        mine.append(table.c.sender == sender.lower())
    moved = await session.execute(
        update(table)
        .where(*mine, table.c.state.in_(states_before(state)))
        .values(
            state=state, code=code[:16], detail=detail, detail_fr=detail_fr, updated_at=utcnow()
        )
    )
    if moved.rowcount:  # type: ignore[attr-defined]
        return True
    if only_known or not sender:
        return False  # nothing kept to move; a status is started for a known sender only
    kept = (await session.execute(select(table.c.id).where(*mine).limit(1))).first()
    if kept is not None:
        return False  # kept, and this change is not allowed (stale, after a failure)
    row = status_row(message_id, sender, recipient, state)
    row.update(code=code[:16], detail=detail, detail_fr=detail_fr)
    await session.execute(insert(table), [row])
    return True


async def statuses_of(
    session: AsyncSession, sender: str, message_ids: Iterable[str]
) -> dict[str, list[RecipientStatus]]:
    """The statuses of the sender's messages, by Message-ID, each recipient once (one query)."""
    wanted = sorted({m.strip()[:MAX_ID] for m in message_ids if m and m.strip()})
    found: dict[str, list[RecipientStatus]] = defaultdict(list)
    if not wanted:
        return found
    rows = await session.execute(
        select(DeliveryStatus)
        .where(DeliveryStatus.sender == sender.lower(), DeliveryStatus.message_id.in_(wanted))
        .order_by(DeliveryStatus.message_id, DeliveryStatus.recipient, DeliveryStatus.id.desc())
    )
    seen: set[tuple[str, str]] = set()
    for (row,) in rows:
        if (row.message_id, row.recipient) in seen:
            continue
        seen.add((row.message_id, row.recipient))
        found[row.message_id].append(
            RecipientStatus(
                row.recipient, row.state, row.code, row.detail, row.detail_fr, row.updated_at
            )
        )
    return found
