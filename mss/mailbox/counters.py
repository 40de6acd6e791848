"""Folder counters kept at write time: what SELECT and STATUS report, read from one row.

Every writer of ``folder_entries`` (append, bulk filing, STORE, COPY/MOVE,
EXPUNGE, RENAME INBOX, retention through ``remove_entries``) adjusts the
folder's row in the same transaction, after it has taken the row
(``allocate`` or ``SELECT ... FOR UPDATE``), so concurrent writers never
lose an update:

- ``exists_count``: entries in the folder (EXISTS, STATUS MESSAGES);
- ``unseen_count``: entries without ``\\Seen`` (STATUS UNSEEN);
- ``recent_count``: entries at or above ``first_recent_uid`` (RECENT);
- ``first_unseen_uid``: the lowest unseen UID, 0 when none (SELECT's ``[UNSEEN n]``),
  found again through the partial index on unseen entries when it may have gone;
- ``keywords``: every keyword set in the folder (the FLAGS response).

UIDNEXT and HIGHESTMODSEQ were already on the row. :func:`verify` recounts
from the entries and names every difference (``mss doctor``, the tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.mailbox.models import Folder, FolderEntry

SEEN = "\\Seen"
# the booleans beside the flag text, each with its partial index (models.FolderEntry)
FLAG_COLUMNS = {
    "\\Seen": "seen",
    "\\Answered": "answered",
    "\\Flagged": "flagged",
    "\\Deleted": "deleted",
    "\\Draft": "draft",
}


def flag_columns(flags: Iterable[str]) -> dict[str, bool]:
    """The boolean columns of an entry whose (canonical, stored) flags are ``flags``."""
    present = set(flags)
    return {column: flag in present for flag, column in FLAG_COLUMNS.items()}


def flag_condition(flag: str, present: bool) -> Any:
    """``NOT seen`` / ``deleted``, spelt as the partial indexes' WHERE (SQLite uses a partial
    index only for a query term written the same way: ``seen IS 0`` would not do)."""
    column = FLAG_COLUMNS[flag]
    return text(column if present else f"NOT {column}")


def keywords_of(flags: Iterable[str]) -> set[str]:
    return {f for f in flags if not f.startswith("\\")}


def _first_unseen_query(folder_id: Any) -> Any:
    """The lowest unseen UID of a folder (0 when none): one probe of the unseen index."""
    return func.coalesce(
        select(func.min(FolderEntry.uid))
        .where(FolderEntry.folder_id == folder_id, flag_condition(SEEN, False))
        .scalar_subquery(),
        0,
    )


async def adjust(
    session: AsyncSession,
    folder_id: int,
    *,
    exists: int = 0,
    unseen: int = 0,
    recent: int = 0,
    unseen_may_move: bool = False,
    keywords: Iterable[str] = (),
    new_modseq: bool = False,
) -> int | None:
    """Add these differences to a folder's counters; with ``unseen_may_move``, find the first
    unseen UID again (after the entries were written in this transaction). With
    ``new_modseq``, the same statement takes the next mod-sequence and returns it (STORE)."""
    values: dict[str, Any] = {}
    if new_modseq:
        values["highest_modseq"] = Folder.highest_modseq + 1
    if exists:
        values["exists_count"] = Folder.exists_count + exists
    if unseen:
        values["unseen_count"] = Folder.unseen_count + unseen
    if recent:
        values["recent_count"] = Folder.recent_count + recent
    if unseen_may_move:
        values["first_unseen_uid"] = _first_unseen_query(folder_id)
    new_keywords = set(keywords)
    if new_keywords:
        stored = (
            await session.execute(select(Folder.keywords).where(Folder.id == folder_id))
        ).scalar_one()
        known = set(stored.split())
        if not new_keywords <= known:
            values["keywords"] = " ".join(sorted(known | new_keywords))
    if not values:
        return None
    statement = (
        update(Folder)
        .where(Folder.id == folder_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if new_modseq:
        return (await session.execute(statement.returning(Folder.highest_modseq))).scalar_one()
    await session.execute(statement)
    return None


async def after_removal(
    session: AsyncSession, folder_id: int, removed: list[tuple[int, str]]
) -> None:
    """Counters after the entries ``removed`` ((uid, stored flags) each) left the folder."""
    if not removed:
        return
    first_recent = (
        await session.execute(select(Folder.first_recent_uid).where(Folder.id == folder_id))
    ).scalar_one()
    unseen = sum(1 for _uid, flags in removed if SEEN not in flags.split())
    await adjust(
        session,
        folder_id,
        exists=-len(removed),
        unseen=-unseen,
        recent=-sum(1 for uid, _flags in removed if uid >= first_recent),
        unseen_may_move=unseen > 0,
    )


@dataclass(frozen=True)
class Counts:
    """A folder's counters, as stored or as recounted."""

    exists: int
    unseen: int
    recent: int
    first_unseen_uid: int
    uidnext_above: bool  # UIDNEXT is above every UID of the folder
    modseq_above: bool  # HIGHESTMODSEQ is at least every entry's mod-sequence
    keywords_cover: bool  # every keyword of an entry is in the folder's keywords


async def recount(session: AsyncSession, folder_id: int) -> Counts:
    """The counters as the entries say (a full read of the folder)."""
    folder = (
        await session.execute(
            select(
                Folder.first_recent_uid, Folder.uidnext, Folder.highest_modseq, Folder.keywords
            ).where(Folder.id == folder_id)
        )
    ).one()
    rows = (
        await session.execute(
            select(FolderEntry.uid, FolderEntry.flags, FolderEntry.modseq, FolderEntry.seen).where(
                FolderEntry.folder_id == folder_id
            )
        )
    ).all()
    unseen = [uid for uid, flags, _m, _s in rows if SEEN not in flags.split()]
    used: set[str] = set()
    for _uid, flags, _m, _s in rows:
        used |= keywords_of(flags.split())
    return Counts(
        exists=len(rows),
        unseen=len(unseen),
        recent=sum(1 for uid, *_ in rows if uid >= folder.first_recent_uid),
        first_unseen_uid=min(unseen, default=0),
        uidnext_above=all(uid < folder.uidnext for uid, *_ in rows),
        modseq_above=all(modseq <= folder.highest_modseq for _u, _f, modseq, _s in rows),
        keywords_cover=used <= set(folder.keywords.split()),
    )


async def stored(session: AsyncSession, folder_id: int) -> Counts:
    """The counters as the folder row holds them."""
    row = (
        await session.execute(
            select(
                Folder.exists_count,
                Folder.unseen_count,
                Folder.recent_count,
                Folder.first_unseen_uid,
            ).where(Folder.id == folder_id)
        )
    ).one()
    return Counts(*row, uidnext_above=True, modseq_above=True, keywords_cover=True)


async def flag_columns_mismatch(session: AsyncSession, folder_id: int) -> int:
    """Entries whose boolean flag columns disagree with their flag text."""
    rows = (
        await session.execute(
            select(
                FolderEntry.flags,
                FolderEntry.seen,
                FolderEntry.answered,
                FolderEntry.flagged,
                FolderEntry.deleted,
                FolderEntry.draft,
            ).where(FolderEntry.folder_id == folder_id)
        )
    ).all()
    columns = list(FLAG_COLUMNS.values())
    return sum(
        1
        for flags, *booleans in rows
        if flag_columns(flags.split()) != dict(zip(columns, map(bool, booleans), strict=True))
    )


async def verify(session: AsyncSession, folder_ids: Iterable[int] | None = None) -> list[str]:
    """A sentence per folder whose stored counters differ from a recount (none: consistent)."""
    if folder_ids is None:
        folder_ids = (await session.scalars(select(Folder.id).order_by(Folder.id))).all()
    problems = []
    for folder_id in folder_ids:
        want, have = await recount(session, folder_id), await stored(session, folder_id)
        for name in ("exists", "unseen", "recent", "first_unseen_uid"):
            if getattr(want, name) != getattr(have, name):
                problems.append(
                    f"folder {folder_id}: {name} is {getattr(have, name)}, "
                    f"the entries say {getattr(want, name)}"
                )
        for name, sentence in (
            ("uidnext_above", "UIDNEXT is not above every UID"),
            ("modseq_above", "HIGHESTMODSEQ is below an entry's mod-sequence"),
            ("keywords_cover", "an entry's keyword is missing from the folder's keywords"),
        ):
            if not getattr(want, name):
                problems.append(f"folder {folder_id}: {sentence}")
        wrong = await flag_columns_mismatch(session, folder_id)
        if wrong:
            problems.append(f"folder {folder_id}: {wrong} entries' flag columns differ from flags")
    return problems


async def rebuild(session: AsyncSession, folder_id: int) -> None:
    """Set the counters from a recount (RENAME INBOX; repairs)."""
    counts = await recount(session, folder_id)
    used: set[str] = set()
    for flags in (
        await session.scalars(select(FolderEntry.flags).where(FolderEntry.folder_id == folder_id))
    ).all():
        used |= keywords_of(flags.split())
    current = (
        await session.execute(select(Folder.keywords).where(Folder.id == folder_id))
    ).scalar_one()
    await session.execute(
        update(Folder)
        .where(Folder.id == folder_id)
        .values(
            exists_count=counts.exists,
            unseen_count=counts.unseen,
            recent_count=counts.recent,
            first_unseen_uid=counts.first_unseen_uid,
            keywords=" ".join(sorted(used | set(current.split()))),
        )
        .execution_options(synchronize_session=False)
    )
