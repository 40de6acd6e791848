"""Messages in a folder: load, watch for changes, set flags, copy, move, expunge.

Every write first takes the folder row (``allocate``), so all changes to a
folder are serialised and mod-sequences increase in commit order: a
reader that has seen everything up to mod-sequence N only needs the rows
above N to catch up (:func:`changes_since`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from mss.mailbox import counters
from mss.mailbox.counters import FLAG_COLUMNS, SEEN, flag_columns, flag_condition, keywords_of
from mss.mailbox.models import ExpungedEntry, Folder, FolderEntry, StoredMessage
from mss.mailbox.notify import mark_changed
from mss.mailbox.orphans import delete_unreferenced_messages
from mss.mailbox.store import allocate, format_flags, parse_flags

CHUNK = 1000
_ENTRIES = FolderEntry.__table__
_STORE_FLAGS = (
    _ENTRIES.update()
    .where(_ENTRIES.c.id == bindparam("eid"))
    .values(
        flags=bindparam("nflags"),
        modseq=bindparam("nmodseq"),
        **{column: bindparam(f"n{column}") for column in FLAG_COLUMNS.values()},
    )
)
# the (flag, present) pairs a partial index answers (models.FolderEntry)
INDEXED_FLAGS = frozenset(
    {
        ("\\Seen", False),
        ("\\Answered", True),
        ("\\Flagged", True),
        ("\\Deleted", True),
        ("\\Draft", True),
    }
)


@dataclass
class Change:
    """One row of :func:`changes_since`: a present entry (flags) or an expunged UID (gone)."""

    uid: int
    flags: frozenset[str]
    modseq: int
    gone: bool


async def load_entries(session: AsyncSession, folder_id: int) -> list[tuple[int, str, int]]:
    """(uid, flags, modseq) of every entry, by ascending UID."""
    connection = await session.connection()  # Core: no ORM row processing over a big folder
    rows = await connection.execute(
        select(FolderEntry.uid, FolderEntry.flags, FolderEntry.modseq)
        .where(FolderEntry.folder_id == folder_id)
        .order_by(FolderEntry.uid)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


_HIGHEST_MODSEQ = select(Folder.highest_modseq).where(Folder.id == bindparam("folder_id"))


async def highest_modseq(session: AsyncSession, folder_id: int) -> int:
    return (await session.execute(_HIGHEST_MODSEQ, {"folder_id": folder_id})).scalar_one()


_CHANGES = union_all(  # built once: the catch-up of every woken session runs it
    select(FolderEntry.uid, FolderEntry.flags, FolderEntry.modseq, literal(0).label("gone")).where(
        FolderEntry.folder_id == bindparam("folder_id"),
        FolderEntry.modseq > bindparam("modseq"),
    ),
    select(
        ExpungedEntry.uid,
        literal("").label("flags"),
        ExpungedEntry.modseq,
        literal(1).label("gone"),
    ).where(
        ExpungedEntry.folder_id == bindparam("folder_id"),
        ExpungedEntry.modseq > bindparam("modseq"),
    ),
)


async def changes_since(session: AsyncSession, folder_id: int, modseq: int) -> list[Change]:
    """Entries changed and UIDs expunged after ``modseq``, read in one statement (one snapshot)."""
    connection = await session.connection()  # Core: no ORM statement processing
    rows = await connection.execute(_CHANGES, {"folder_id": folder_id, "modseq": modseq})
    return [Change(row[0], parse_flags(row[1]), row[2], bool(row[3])) for row in rows]


def _chunks(uids: Sequence[int]) -> Iterable[list[int]]:
    ordered = sorted(uids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


async def rows_for_uids(
    session: AsyncSession,
    folder_id: int,
    uids: Sequence[int],
    columns: Sequence[Any],
    where: Sequence[Any] = (),
) -> AsyncIterator[Any]:
    """Rows of ``columns`` (entry and message columns) for the given UIDs, in chunks, by UID.

    Each chunk is one range query on the (folder_id, uid) index, filtered to the asked UIDs.
    With extra ``where`` filters (SEARCH pre-filters) over many UIDs, one query lets the
    database scan the folder once.
    """
    base = select(FolderEntry.uid, *columns).join(
        StoredMessage, StoredMessage.id == FolderEntry.message_id
    )
    if where and len(uids) > CHUNK:
        wanted = set(uids)
        stmt = base.where(FolderEntry.folder_id == folder_id, *where).order_by(FolderEntry.uid)
        for row in await session.execute(stmt):
            if row[0] in wanted:
                yield row
        return
    for chunk in _chunks(uids):
        wanted = set(chunk)
        stmt = base.where(
            FolderEntry.folder_id == folder_id,
            FolderEntry.uid >= chunk[0],
            FolderEntry.uid <= chunk[-1],
            *where,
        ).order_by(FolderEntry.uid)
        for row in await session.execute(stmt):
            if row[0] in wanted:
                yield row


@dataclass
class FlagUpdate:
    """What a STORE did: new flags and modseq of changed UIDs, and UIDs refused by
    UNCHANGEDSINCE."""

    changed: dict[int, tuple[frozenset[str], int]]
    current: dict[int, tuple[frozenset[str], int]]
    modified: list[int]


async def store_flags(
    session: AsyncSession,
    mailbox_id: int,
    folder_id: int,
    uids: Sequence[int],
    mode: str,
    flags: Iterable[str],
    unchanged_since: int | None = None,
) -> FlagUpdate:
    """Set (``mode="set"``), add (``"add"``) or remove (``"remove"``) flags on entries.

    Works on the flags as committed (not a session's cached view), so concurrent
    sessions never lose each other's changes.
    """
    wanted = frozenset(flags)
    lowered = {f.lower() for f in wanted}
    # Hold the folder row while reading flags (PostgreSQL); a new mod-sequence only if something
    # changes.
    await session.execute(select(Folder.id).where(Folder.id == folder_id).with_for_update())
    modseq = await highest_modseq(session, folder_id) + 1
    result = FlagUpdate({}, {}, [])
    updates: list[dict[str, Any]] = []
    old_flags: dict[int, frozenset[str]] = {}
    unseen_delta = 0
    new_keywords: set[str] = set()
    for chunk in _chunks(uids):
        members = set(chunk)
        rows = await session.execute(
            select(FolderEntry.id, FolderEntry.uid, FolderEntry.flags, FolderEntry.modseq).where(
                FolderEntry.folder_id == folder_id,
                FolderEntry.uid >= chunk[0],
                FolderEntry.uid <= chunk[-1],
            )
        )
        for entry_id, uid, stored, entry_modseq in rows:
            if uid not in members:
                continue
            old = old_flags[uid] = parse_flags(stored)
            if unchanged_since is not None and entry_modseq > unchanged_since:
                result.modified.append(uid)
                result.current[uid] = (old, entry_modseq)
                continue
            if mode == "set":
                new = wanted
            elif mode == "add":
                new = old | wanted
            else:
                new = frozenset(f for f in old if f.lower() not in lowered)
            new_text = format_flags(new)
            if new_text == format_flags(old):
                result.current[uid] = (old, entry_modseq)
                continue
            updates.append(
                {
                    "eid": entry_id,
                    "nflags": new_text,
                    "nmodseq": modseq,
                    **{f"n{k}": v for k, v in flag_columns(new_text.split()).items()},
                }
            )
            unseen_delta += (SEEN in old) - (SEEN in new)
            new_keywords |= keywords_of(new)
            result.changed[uid] = (parse_flags(new_text), modseq)
            result.current[uid] = result.changed[uid]
    if updates:
        await session.execute(_STORE_FLAGS, updates)
        # one statement takes the mod-sequence (the row is held since the start) and moves the
        # counters, after the entries: the first unseen UID is looked up in their new state
        allocated = await counters.adjust(
            session,
            folder_id,
            unseen=unseen_delta,
            unseen_may_move=any(
                (SEEN in result.changed[u][0]) != (SEEN in old_flags[u]) for u in result.changed
            ),
            keywords=new_keywords,
            new_modseq=True,
        )
        assert allocated == modseq
        await mark_changed(session, mailbox_id)
    result.modified.sort()
    return result


async def copy_entries(
    session: AsyncSession, mailbox_id: int, source_id: int, uids: Sequence[int], target: Folder
) -> list[tuple[int, int]]:
    """Copy entries (same stored message, same flags) to ``target``: [(source UID, new UID)]."""
    rows: list[tuple[int, int, str]] = []
    for chunk in _chunks(uids):
        members = set(chunk)
        found = await session.execute(
            select(FolderEntry.uid, FolderEntry.message_id, FolderEntry.flags)
            .where(
                FolderEntry.folder_id == source_id,
                FolderEntry.uid >= chunk[0],
                FolderEntry.uid <= chunk[-1],
            )
            .order_by(FolderEntry.uid)
        )
        rows.extend((uid, message_id, flags) for uid, message_id, flags in found if uid in members)
    if not rows:
        return []
    first_uid, modseq = await allocate(session, target.id, len(rows))
    await session.execute(
        insert(FolderEntry),
        [
            {
                "folder_id": target.id,
                "uid": first_uid + i,
                "message_id": message_id,
                "flags": flags,
                "modseq": modseq,
                **flag_columns(flags.split()),
            }
            for i, (_uid, message_id, flags) in enumerate(rows)
        ],
    )
    unseen = sum(1 for _u, _m, flags in rows if SEEN not in flags.split())
    used: set[str] = set()
    for _u, _m, flags in rows:
        used |= keywords_of(flags.split())
    await counters.adjust(
        session,
        target.id,
        exists=len(rows),
        unseen=unseen,
        recent=len(rows),
        unseen_may_move=unseen > 0,
        keywords=used,
    )
    await mark_changed(session, mailbox_id)
    return [(uid, first_uid + i) for i, (uid, _m, _f) in enumerate(rows)]


async def remove_entries(
    session: AsyncSession,
    mailbox_id: int,
    folder_id: int,
    uids: Sequence[int],
    *,
    only_deleted: bool,
) -> list[int]:
    """Remove entries (EXPUNGE: only those flagged \\Deleted; MOVE: all), recording their UIDs.

    Stored messages left without any entry (or other reference) are deleted too.
    """
    removed: list[int] = []
    gone: list[tuple[int, str]] = []
    messages: list[int] = []
    for chunk in _chunks(uids):
        members = set(chunk)
        rows = await session.execute(
            select(
                FolderEntry.id, FolderEntry.uid, FolderEntry.flags, FolderEntry.message_id
            ).where(
                FolderEntry.folder_id == folder_id,
                FolderEntry.uid >= chunk[0],
                FolderEntry.uid <= chunk[-1],
            )
        )
        ids = []
        for entry_id, uid, flags, message_id in rows:
            if uid in members and (not only_deleted or "\\Deleted" in parse_flags(flags)):
                ids.append(entry_id)
                removed.append(uid)
                gone.append((uid, flags))
                messages.append(message_id)
        if ids:
            await session.execute(delete(FolderEntry).where(FolderEntry.id.in_(ids)))
    if removed:
        _, modseq = await allocate(session, folder_id, 0)
        await session.execute(
            insert(ExpungedEntry),
            [{"folder_id": folder_id, "uid": uid, "modseq": modseq} for uid in removed],
        )
        await counters.after_removal(session, folder_id, gone)
        await delete_unreferenced_messages(session, messages)
        await mark_changed(session, mailbox_id)
    return sorted(removed)


async def deleted_uids(session: AsyncSession, folder_id: int) -> list[int]:
    """UIDs currently flagged \\Deleted (what EXPUNGE would remove)."""
    return await uids_with_flag(session, folder_id, "\\Deleted", True)


async def uids_with_flag(
    session: AsyncSession, folder_id: int, flag: str, present: bool
) -> list[int]:
    """UIDs with (``present``) or without a system flag, through its partial index, by UID.

    Only the indexed side is asked: \\Seen absent, the other flags present
    (:data:`INDEXED_FLAGS`).
    """
    assert (flag, present) in INDEXED_FLAGS
    condition = flag_condition(flag, present).text  # as the partial index spells it
    connection = await session.connection()
    # The driver's own rows: tens of thousands of UIDs (UNSEEN in a big folder) cost 40 %
    # less than through SQLAlchemy's result (33,334 UIDs: 31.5 ms against 51.9 ms, SQLite).
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        rows = await driver.fetch(
            f"SELECT uid FROM folder_entries WHERE folder_id = $1 AND {condition} ORDER BY uid",
            folder_id,
        )
    else:
        cursor = await driver.execute(
            f"SELECT uid FROM folder_entries WHERE folder_id = ? AND {condition} ORDER BY uid",
            (folder_id,),
        )
        rows = await cursor.fetchall()
    return [row[0] for row in rows]
