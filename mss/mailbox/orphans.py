"""Deleting stored messages nothing refers to any more (after EXPUNGE, MOVE, folder deletion).

A message is stored once and shared by every folder entry holding it, so
it may only go when its last entry goes, and only if nothing else in the
hub still needs it:

- a foreign key to ``messages.id`` (every one in the schema, found in the
  metadata: DMP documents, agenda convocations... and tables added later);
- a conversation (a patient's reply is matched to the Message-IDs of the
  conversation's messages, so those are kept), except for a retention purge
  (``mss.retention``): a message no folder holds any more is cited by no one;
- a job that is not finished (relay, DSN, filing, convocation payloads
  carry ``message_id``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, and_, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

import mss.schema  # noqa: F401 - every table, so every foreign key to messages is known
from mss.db import Base
from mss.jobs import Job
from mss.mailbox.models import StoredMessage

_MESSAGES = StoredMessage.__table__


def _referencing_columns() -> list[Column]:
    columns = []
    for table in Base.metadata.tables.values():
        for fk in table.foreign_keys:
            if fk.column.table is _MESSAGES and fk.column.name == "id":
                columns.append(fk.parent)
    return columns


async def delete_unreferenced_messages(
    session: AsyncSession, message_ids: Iterable[int], *, keep_conversations: bool = True
) -> int:
    """Delete those of ``message_ids`` nothing refers to any more; returns how many went.

    Runs in a savepoint: if another transaction has just referred to one of them
    (a COPY racing the EXPUNGE), the foreign key refuses, nothing is deleted and the
    caller's transaction goes on.
    """
    wanted = sorted(set(message_ids))
    if not wanted:
        return 0
    conditions = [~exists().where(column == _MESSAGES.c.id) for column in _referencing_columns()]
    if keep_conversations:
        conditions.append(_MESSAGES.c.conversation_id.is_(None))
    pending = select(Job.payload["message_id"].as_integer()).where(
        Job.state != "done", Job.payload["message_id"].as_integer().in_(wanted)
    )
    held = set((await session.execute(pending)).scalars().all())
    candidates = [i for i in wanted if i not in held]
    if not candidates:
        return 0
    statement = delete(StoredMessage).where(and_(StoredMessage.id.in_(candidates), *conditions))
    try:
        async with session.begin_nested():
            result = await session.execute(statement.execution_options(synchronize_session=False))
    except IntegrityError:
        return 0
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
