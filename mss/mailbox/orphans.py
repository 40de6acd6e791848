"""Deleting stored messages nothing refers to any more (after EXPUNGE, MOVE, folder deletion).

A message is stored once and shared by every folder entry holding it, so
it may only go when its last entry goes, and only if nothing else in the
hub still needs it:

- a foreign key to ``messages.id`` (every one in the live database's schema, read
  from the database once per process: DMP documents, agenda convocations... and
  tables added later, whichever package defines them);
- a conversation (a patient's reply is matched to the Message-IDs of the
  conversation's messages, so those are kept), except for a retention purge
  (``mss.retention``): a message no folder holds any more is cited by no one;
- a job that is not finished (relay, DSN, filing, convocation payloads
  carry ``message_id``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    ColumnClause,
    Connection,
    and_,
    column,
    delete,
    exists,
    inspect,
    select,
    table,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mss.jobs import Job
from mss.mailbox.models import StoredMessage

_MESSAGES = StoredMessage.__table__

# The database's (table, column) pairs referring to ``messages.id``, by database URL: read
# from the live schema (not the ORM metadata, which knows only the models imported so far),
# once per process; the schema changes only through the migration, before the hub starts.
_REFERENCING: dict[str, tuple[tuple[str, str], ...]] = {}


def _read_referencing(connection: Connection) -> tuple[tuple[str, str], ...]:
    found: set[tuple[str, str]] = set()
    for (_schema, name), keys in inspect(connection).get_multi_foreign_keys().items():
        for key in keys:
            if key["referred_table"] == _MESSAGES.name and key["referred_columns"] == ["id"]:
                found.update((name, part) for part in key["constrained_columns"])
    return tuple(sorted(found))


async def _referencing_columns(session: AsyncSession) -> list[ColumnClause]:
    connection = await session.connection()
    key = connection.engine.url.render_as_string(hide_password=True)
    if key not in _REFERENCING:
        _REFERENCING[key] = await connection.run_sync(_read_referencing)
    return [table(name, column(part)).c[part] for name, part in _REFERENCING[key]]


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
    conditions = [
        ~exists().where(referring == _MESSAGES.c.id)
        for referring in await _referencing_columns(session)
    ]
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
