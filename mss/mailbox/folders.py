"""Folder management for IMAP: create, delete, rename, subscribe, status counts.

Folder names are Unicode with ``/`` as the hierarchy delimiter; the IMAP
layer converts to and from modified UTF-7 on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.mailbox import counters
from mss.mailbox.models import (
    ExpungedEntry,
    Folder,
    FolderEntry,
    LostSubscription,
    StoredMessage,
)
from mss.mailbox.notify import mark_changed
from mss.mailbox.orphans import delete_unreferenced_messages
from mss.mailbox.store import INBOX, allocate, find_folder, next_uidvalidity, normalise_folder_name

DELIMITER = "/"


class FolderError(Exception):
    """A folder operation refused, with an IMAP response code and a sentence."""

    def __init__(self, sentence: str, code: str | None = None) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.code = code


def check_name(name: str) -> str:
    """A normalised, acceptable folder name; raises FolderError."""
    name = normalise_folder_name(name)
    if not name or name.startswith(DELIMITER) or name.endswith(DELIMITER) or "//" in name:
        raise FolderError(f"{name!r} is not a valid folder name", "CANNOT")
    if any(ord(c) < 0x20 or c in "*%" for c in name) or len(name) > 512:
        raise FolderError(f"{name!r} contains characters a folder name cannot hold", "CANNOT")
    return name


async def list_folders(session: AsyncSession, mailbox_id: int) -> list[Folder]:
    return list(
        (
            await session.scalars(
                select(Folder).where(Folder.mailbox_id == mailbox_id).order_by(Folder.name)
            )
        ).all()
    )


async def lost_subscriptions(session: AsyncSession, mailbox_id: int) -> list[str]:
    """Subscribed names whose folder no longer exists (RFC 3501 §6.3.6), in name order."""
    return list(
        (
            await session.scalars(
                select(LostSubscription.name)
                .where(LostSubscription.mailbox_id == mailbox_id)
                .order_by(LostSubscription.name)
            )
        ).all()
    )


async def _take_lost_subscription(session: AsyncSession, mailbox_id: int, name: str) -> bool:
    """Forget a lost subscription to ``name``; True when there was one."""
    result = await session.execute(
        delete(LostSubscription).where(
            LostSubscription.mailbox_id == mailbox_id, LostSubscription.name == name
        )
    )
    return bool(cast(CursorResult[Any], result).rowcount)  # a DELETE's result, typed Result


async def create_folder(session: AsyncSession, mailbox_id: int, name: str) -> Folder:
    """Create a folder and any missing parents (RFC 3501 section 6.3.3)."""
    name = check_name(name)
    if await find_folder(session, mailbox_id, name) is not None:
        raise FolderError(f"the folder {name!r} already exists", "ALREADYEXISTS")
    segments = name.split(DELIMITER)
    created: Folder | None = None
    for depth in range(1, len(segments) + 1):
        path = DELIMITER.join(segments[:depth])
        if await find_folder(session, mailbox_id, path) is None:
            created = Folder(
                mailbox_id=mailbox_id,
                name=path,
                special_use=None,
                uidvalidity=await next_uidvalidity(session, mailbox_id),
                uidnext=1,
                highest_modseq=1,
                subscribed=True,
            )
            await _take_lost_subscription(session, mailbox_id, path)
            session.add(created)
            await session.flush()
    assert created is not None
    await mark_changed(session, mailbox_id)
    return created


async def delete_folder(session: AsyncSession, mailbox_id: int, name: str) -> None:
    """Delete a folder and its entries; INBOX and folders with children cannot be deleted."""
    name = normalise_folder_name(name)
    if name == INBOX:
        raise FolderError("INBOX cannot be deleted", "CANNOT")
    folder = await find_folder(session, mailbox_id, name)
    if folder is None:
        raise FolderError(f"the folder {name!r} does not exist", "NONEXISTENT")
    child = (
        await session.execute(
            select(Folder.id)
            .where(
                Folder.mailbox_id == mailbox_id,
                Folder.name.startswith(name + DELIMITER, autoescape=True),
            )
            .limit(1)
        )
    ).first()
    if child is not None:
        raise FolderError(f"the folder {name!r} has subfolders: delete them first", "INUSE")
    messages = (
        await session.scalars(
            select(FolderEntry.message_id).where(FolderEntry.folder_id == folder.id)
        )
    ).all()
    await session.execute(delete(FolderEntry).where(FolderEntry.folder_id == folder.id))
    await delete_unreferenced_messages(session, messages)
    await session.execute(delete(ExpungedEntry).where(ExpungedEntry.folder_id == folder.id))
    if folder.subscribed:  # DELETE does not unsubscribe (RFC 3501 §6.3.6)
        await _take_lost_subscription(
            session, mailbox_id, folder.name
        )  # one row per name, however made
        session.add(LostSubscription(mailbox_id=mailbox_id, name=folder.name))
    await session.delete(folder)
    await session.flush()
    await mark_changed(session, mailbox_id)


async def rename_folder(session: AsyncSession, mailbox_id: int, old: str, new: str) -> None:
    """Rename a folder and its subfolders; renaming INBOX moves its messages to a new folder."""
    old = normalise_folder_name(old)
    new = check_name(new)
    source = await find_folder(session, mailbox_id, old)
    if source is None:
        raise FolderError(f"the folder {old!r} does not exist", "NONEXISTENT")
    if await find_folder(session, mailbox_id, new) is not None:
        raise FolderError(f"the folder {new!r} already exists", "ALREADYEXISTS")
    if new.startswith(old + DELIMITER):
        raise FolderError("a folder cannot be moved into itself", "CANNOT")
    if old == INBOX:
        target = await create_folder(session, mailbox_id, new)
        entries = (
            await session.execute(
                select(FolderEntry.id, FolderEntry.uid)
                .where(FolderEntry.folder_id == source.id)
                .order_by(FolderEntry.uid)
            )
        ).all()
        if entries:
            first_uid, modseq = await allocate(session, target.id, len(entries))
            for offset, row in enumerate(entries):
                await session.execute(
                    update(FolderEntry)
                    .where(FolderEntry.id == row.id)
                    .values(folder_id=target.id, uid=first_uid + offset, modseq=modseq)
                )
            _, gone_modseq = await allocate(session, source.id, 0)
            await session.execute(
                insert(ExpungedEntry),
                [
                    {"folder_id": source.id, "uid": row.uid, "modseq": gone_modseq}
                    for row in entries
                ],
            )
            await counters.rebuild(session, source.id)
            await counters.rebuild(session, target.id)
        await mark_changed(session, mailbox_id)
        return
    parent = new.rsplit(DELIMITER, 1)[0] if DELIMITER in new else None
    if parent and await find_folder(session, mailbox_id, parent) is None:
        await create_folder(session, mailbox_id, parent)
    children = (
        await session.scalars(
            select(Folder).where(
                Folder.mailbox_id == mailbox_id,
                Folder.name.startswith(old + DELIMITER, autoescape=True),
            )
        )
    ).all()
    for folder in [source, *children]:
        folder.name = new + folder.name[len(old) :]
        if await _take_lost_subscription(session, mailbox_id, folder.name):
            folder.subscribed = True
    await session.flush()
    await mark_changed(session, mailbox_id)


async def set_subscribed(
    session: AsyncSession, mailbox_id: int, name: str, subscribed: bool
) -> None:
    """SUBSCRIBE an existing folder, UNSUBSCRIBE any subscribed name (a deleted folder's too)."""
    folder = await find_folder(session, mailbox_id, name)
    if folder is None:
        if subscribed:
            raise FolderError(f"the folder {name!r} does not exist", "NONEXISTENT")
        await _take_lost_subscription(session, mailbox_id, normalise_folder_name(name))
        return
    folder.subscribed = subscribed
    await session.flush()


@dataclass
class FolderStatus:
    """The counts STATUS and SELECT report."""

    messages: int
    unseen: int
    uidnext: int
    uidvalidity: int
    highest_modseq: int
    size: int = 0
    recent: int = 0
    first_recent_uid: int = 1


async def folder_status(
    session: AsyncSession, folder: Folder, *, with_size: bool = False
) -> FolderStatus:
    """The folder's counters, from its row (kept at write time: mss.mailbox.counters)."""
    current = (
        await session.execute(
            select(
                Folder.exists_count,
                Folder.unseen_count,
                Folder.recent_count,
                Folder.uidnext,
                Folder.highest_modseq,
                Folder.first_recent_uid,
            ).where(Folder.id == folder.id)
        )
    ).one()
    size = 0
    if with_size:  # STATUS SIZE (RFC 8438) sums the sizes: the one count left to the entries
        size = (
            await session.execute(
                select(func.coalesce(func.sum(StoredMessage.size), 0))
                .join(FolderEntry, FolderEntry.message_id == StoredMessage.id)
                .where(FolderEntry.folder_id == folder.id)
            )
        ).scalar_one()
    return FolderStatus(
        messages=current.exists_count,
        unseen=current.unseen_count,
        uidnext=current.uidnext,
        uidvalidity=folder.uidvalidity,
        highest_modseq=current.highest_modseq,
        size=int(size),
        recent=current.recent_count,
        first_recent_uid=current.first_recent_uid,
    )


async def claim_recent(
    session: AsyncSession, folder_id: int, below: int, *, wait: bool = True
) -> tuple[int, int]:
    """Take the \\Recent messages of a folder for one session: the UIDs in [first, end) are its own.

    ``below`` is one more than the highest UID the session has seen; UIDs it has not
    seen yet stay recent for whoever sees them first. The folder row is locked, so two
    sessions never get the same message as recent. Without ``wait`` (the sessions an IDLE
    wake-up catches up together) a session finds the row taken and claims nothing: the one
    holding it, or a later catch-up, does.
    """
    first = (
        await session.execute(
            select(Folder.first_recent_uid)
            .where(Folder.id == folder_id)
            .with_for_update(skip_locked=not wait)
        )
    ).scalar_one_or_none()
    if first is None:  # without ``wait``: another writer holds the row, claim nothing now
        return below, below
    if below <= first:
        return first, first
    still_recent = (
        select(func.count(FolderEntry.id))
        .where(FolderEntry.folder_id == folder_id, FolderEntry.uid >= below)
        .scalar_subquery()
    )
    await session.execute(
        update(Folder)
        .where(Folder.id == folder_id)
        .values(first_recent_uid=below, recent_count=still_recent)
        .execution_options(synchronize_session=False)
    )
    return first, below
