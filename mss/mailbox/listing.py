"""What a reader of one mailbox lists and opens: its entries by folder, and entries by id.

Statements built once at import (``bindparam``): a listing costs its execution only, not the
building and cache-key walk of a new ``select`` each time. Every read is scoped by the mailbox,
so an entry of another mailbox is simply not found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ScalarSelect, Select, SQLColumnExpression, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.conversations import Conversation
from mss.mailbox.models import Folder, FolderEntry, StoredMessage


@dataclass(frozen=True)
class ListedEntry:
    """One entry of a folder with what a list shows of its message (no raw bytes)."""

    folder: str
    uid: int
    entry_id: int
    flags: str  # as stored: mss.mailbox.store.parse_flags reads them
    message_id: int
    subject: str
    internal_date: dt.datetime
    from_address: str
    envelope: list[Any]
    conversation_id: int | None
    top_type: str  # the message's top MIME type (multipart/report: a read receipt)


_LISTING = (
    select(
        Folder.name,
        FolderEntry.uid,
        FolderEntry.id,
        FolderEntry.flags,
        StoredMessage.id,
        StoredMessage.subject,
        StoredMessage.internal_date,
        StoredMessage.from_address,
        StoredMessage.envelope,
        StoredMessage.conversation_id,
        StoredMessage.bodystructure,
    )
    .join(FolderEntry, FolderEntry.folder_id == Folder.id)
    .join(StoredMessage, StoredMessage.id == FolderEntry.message_id)
    .where(
        Folder.mailbox_id == bindparam("mailbox_id"),
        Folder.name.in_(bindparam("names", expanding=True)),
    )
)
_ENTRIES = (
    select(FolderEntry, Folder, StoredMessage)
    .join(Folder, Folder.id == FolderEntry.folder_id)
    .join(StoredMessage, StoredMessage.id == FolderEntry.message_id)
    .where(
        FolderEntry.id.in_(bindparam("entry_ids", expanding=True)),
        Folder.mailbox_id == bindparam("mailbox_id"),
    )
)


async def list_entries(
    session: AsyncSession, mailbox_id: int, folder_names: Sequence[str]
) -> list[ListedEntry]:
    """Every entry of the named folders of the mailbox (names as stored), in no order; one
    statement."""
    rows = await session.execute(_LISTING, {"mailbox_id": mailbox_id, "names": list(folder_names)})
    return [
        ListedEntry(
            folder,
            uid,
            entry_id,
            flags or "",
            message_id,
            subject or "",
            when,
            sender or "",
            envelope or [],
            conversation_id,
            ((structure or {}).get("parts") or {}).get("type", "text/plain"),
        )
        for (
            folder,
            uid,
            entry_id,
            flags,
            message_id,
            subject,
            when,
            sender,
            envelope,
            conversation_id,
            structure,
        ) in rows
    ]


async def find_entries(
    session: AsyncSession, mailbox_id: int, entry_ids: Sequence[int]
) -> dict[int, tuple[FolderEntry, Folder, StoredMessage]]:
    """Entries of the mailbox by id, each with its folder and message; absent ones left out."""
    if not entry_ids:
        return {}
    rows = await session.execute(_ENTRIES, {"entry_ids": list(entry_ids), "mailbox_id": mailbox_id})
    return {entry.id: (entry, folder, message) for entry, folder, message in rows}


def entry_with_its_mailbox(
    mailbox: type[Any], mailbox_id: SQLColumnExpression[int]
) -> Select[Any, FolderEntry, Folder, StoredMessage, Conversation | None]:
    """``select(mailbox, entry, folder, message, conversation)`` for the entry ``:entry_id``.

    The mailbox row is the directory's (``mailbox`` and its id column are given, not imported:
    the directory imports this package); the caller adds its own condition on that row and
    builds the statement once. The conversation is outer-joined (None outside any).
    """
    return (
        select(mailbox, FolderEntry, Folder, StoredMessage, Conversation)
        .join(Folder, Folder.mailbox_id == mailbox_id)
        .join(FolderEntry, FolderEntry.folder_id == Folder.id)
        .join(StoredMessage, StoredMessage.id == FolderEntry.message_id)
        .outerjoin(Conversation, Conversation.id == StoredMessage.conversation_id)
        .where(FolderEntry.id == bindparam("entry_id"))
    )


def folders_stamp(mailbox_id: SQLColumnExpression[int]) -> list[ScalarSelect[Any]]:
    """Columns that change whenever an entry of the mailbox is added, flagged or expunged, or a
    folder created or deleted: the folders' HIGHESTMODSEQ summed (each moves on with every
    change of its entries, RFC 7162 §3.1), their number and their ids summed.

    For a statement built once by the directory (``mailbox_id`` is its column, as in
    ``entry_with_its_mailbox``); a reader compares them with what it saw last.
    """
    of_mailbox = Folder.mailbox_id == mailbox_id
    return [
        select(func.coalesce(func.sum(column), 0)).where(of_mailbox).scalar_subquery()
        for column in (Folder.highest_modseq, Folder.id)
    ] + [select(func.count(Folder.id)).where(of_mailbox).scalar_subquery()]


def conversations_stamp(mailbox_id: SQLColumnExpression[int]) -> list[ScalarSelect[Any]]:
    """Columns that change when a conversation of this patient mailbox is opened or closed (or
    reopened): their number and the number closed."""
    of_mailbox = Conversation.patient_mailbox_id == mailbox_id
    return [
        select(func.count(Conversation.id)).where(of_mailbox).scalar_subquery(),
        select(func.count(Conversation.closed_at)).where(of_mailbox).scalar_subquery(),
    ]
