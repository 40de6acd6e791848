"""The message store API used by delivery (SMTP gateway, portal) and IMAP.

Every function takes the caller's session and does its work inside the
caller's transaction (``async with db.write() as session``), so delivery to
several mailboxes, the audit events and the jobs commit together.

UIDs and mod-sequences come from one ``UPDATE folders ... RETURNING``:
on PostgreSQL the row lock serialises concurrent appends to a folder until
commit (so UIDs become visible in ascending order); on SQLite the single
writer lock does the same.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import insert_ids, pairs_in, pairs_values, utcnow
from mss.mailbox import counters
from mss.mailbox.counters import flag_columns
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.notify import mark_changed, mark_changed_many
from mss.mailbox.structure import MessageStructure, describe

INBOX = "INBOX"
DEFAULT_FOLDERS: dict[str, str | None] = {
    INBOX: None,
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Archive": "\\Archive",
}
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class FolderNotFound(LookupError):
    """The named folder does not exist in this mailbox."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the folder {name!r} does not exist")
        self.name = name


def normalise_folder_name(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 section 5.1), and so are its children's first segment."""
    head, sep, rest = name.partition("/")
    if head.upper() == INBOX:
        return INBOX + sep + rest
    return name


def format_flags(flags: Iterable[str]) -> str:
    """The stored form of a flag set: space-separated, system flags capitalised, in a stable
    order."""
    canonical = {f.lower(): f for f in SYSTEM_FLAGS}
    seen: dict[str, str] = {}
    for flag in flags:
        flag = canonical.get(flag.lower(), flag)
        seen.setdefault(flag.lower(), flag)
    return " ".join(sorted(seen.values(), key=lambda f: (not f.startswith("\\"), f.lower())))


def parse_flags(stored: str) -> frozenset[str]:
    return frozenset(stored.split()) if stored else frozenset()


def _uidvalidity_after(highest: int | None) -> int:
    """A UIDVALIDITY above every one a mailbox used (``highest``): time-based, then increasing."""
    return max(int(time.time()) & 0xFFFFFFFF, (highest or 0) + 1)


async def next_uidvalidity(session: AsyncSession, mailbox_id: int) -> int:
    """A UIDVALIDITY never used before by a folder of this mailbox."""
    highest = (
        await session.execute(
            select(func.max(Folder.uidvalidity)).where(Folder.mailbox_id == mailbox_id)
        )
    ).scalar_one()
    return _uidvalidity_after(highest)


async def ensure_folders(session: AsyncSession, mailbox_id: int) -> dict[str, Folder]:
    """The standard folders of a mailbox (INBOX, Sent, Drafts, Trash, Archive), created if
    missing."""
    query = select(Folder).where(Folder.mailbox_id == mailbox_id)
    folders = {f.name: f for f in (await session.scalars(query)).all()}
    if any(name not in folders for name in DEFAULT_FOLDERS):
        await create_default_folders(session, [mailbox_id])
        folders = {f.name: f for f in (await session.scalars(query)).all()}
    return folders


async def create_default_folders(session: AsyncSession, mailbox_ids: Sequence[int]) -> None:
    """Create the standard folders each of these mailboxes lacks, in one INSERT for all."""
    existing = (
        await session.execute(
            select(Folder.mailbox_id, Folder.name, Folder.uidvalidity).where(
                Folder.mailbox_id.in_(mailbox_ids)
            )
        )
    ).all()
    names: dict[int, set[str]] = defaultdict(set)
    highest: dict[int, int] = {}
    for mailbox_id, name, uidvalidity in existing:
        names[mailbox_id].add(name)
        highest[mailbox_id] = max(highest.get(mailbox_id, 0), uidvalidity)
    rows = []
    for mailbox_id in mailbox_ids:
        first_validity = _uidvalidity_after(highest.get(mailbox_id))
        missing = [name for name in DEFAULT_FOLDERS if name not in names[mailbox_id]]
        rows += [
            {
                "mailbox_id": mailbox_id,
                "name": name,
                "special_use": DEFAULT_FOLDERS[name],
                "uidvalidity": first_validity + offset,
                "uidnext": 1,
                "highest_modseq": 1,
                "subscribed": True,
            }
            for offset, name in enumerate(missing)
        ]
    if rows:
        await session.execute(insert(Folder.__table__), rows)


_FIND_FOLDER = select(Folder).where(  # built once: every SELECT, STATUS, APPEND... runs it
    Folder.mailbox_id == bindparam("mailbox_id"), Folder.name == bindparam("name")
)


async def find_folder(session: AsyncSession, mailbox_id: int, name: str) -> Folder | None:
    """The folder called ``name`` (INBOX case-insensitively), or None."""
    name = normalise_folder_name(name)
    found = await session.scalars(_FIND_FOLDER, {"mailbox_id": mailbox_id, "name": name})
    return found.one_or_none()


async def find_message(session: AsyncSession, message_id: int) -> StoredMessage | None:
    """The stored message with this id (``session.get``: not read again when the session holds
    it)."""
    return await session.get(StoredMessage, message_id)


def _signature_columns(signature: dict | None) -> dict[str, str | bool | None]:
    if not signature:
        return {}
    return {
        "arrived_encrypted": bool(signature.get("arrived_encrypted")),
        "signature_status": str(signature.get("status", "none")),
        "signer_address": signature.get("signer_address"),
        "signer_subject": signature.get("signer_subject"),
        "signer_id_nat": signature.get("signer_id_nat"),
    }


def message_values(
    raw: bytes,
    facts: MessageStructure | None = None,
    *,
    internal_date: dt.datetime | None = None,
    signature: dict | None = None,
    conversation_id: int | None = None,
) -> dict[str, Any]:
    """The column values of one stored message; ``facts`` is ``describe(raw)`` if already
    computed."""
    facts = facts or describe(raw)
    return dict(
        raw=raw,
        size=facts.size,
        internal_date=internal_date or utcnow(),
        sent_date=facts.sent_date,
        message_id_header=facts.message_id,
        subject=facts.subject,
        from_address=facts.from_address,
        headers_text=facts.headers_text,
        envelope=facts.envelope,
        bodystructure=facts.structure_column(),
        conversation_id=conversation_id,
        **_signature_columns(signature),
    )


async def store_message(
    session: AsyncSession,
    raw: bytes,
    *,
    internal_date: dt.datetime | None = None,
    signature: dict | None = None,
    conversation_id: int | None = None,
) -> StoredMessage:
    """Store the exact raw bytes once, with the IMAP facts computed now (never again at FETCH).

    ``signature`` may carry ``status``, ``signer_address``, ``signer_subject``,
    ``signer_id_nat`` from the gateway's S/MIME verification and ``arrived_encrypted``
    when the gateway decrypted the message.
    """
    message = StoredMessage(
        **message_values(
            raw, internal_date=internal_date, signature=signature, conversation_id=conversation_id
        )
    )
    session.add(message)
    await session.flush()
    return message


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store several messages (``message_values`` rows) in one statement; their ids, in order."""
    return await insert_ids(session, StoredMessage.__table__, rows)  # Core: no ORM bookkeeping


_ALLOCATE = (  # built once: every write to a folder runs it
    update(Folder)
    .where(Folder.id == bindparam("folder_id"))
    .values(uidnext=Folder.uidnext + bindparam("uids"), highest_modseq=Folder.highest_modseq + 1)
    .returning(Folder.uidnext, Folder.highest_modseq)
    .execution_options(synchronize_session=False)
)


async def allocate(session: AsyncSession, folder_id: int, uids: int = 1) -> tuple[int, int]:
    """Reserve ``uids`` UIDs and one new mod-sequence in a folder: (first UID, modseq).

    One atomic ``UPDATE ... RETURNING``, so concurrent writers never share a UID.
    """
    row = (await session.execute(_ALLOCATE, {"folder_id": folder_id, "uids": uids})).one()
    return row.uidnext - uids, row.highest_modseq


async def append(
    session: AsyncSession,
    mailbox_id: int,
    folder_name: str,
    message: StoredMessage,
    flags: Iterable[str] = (),
) -> FolderEntry:
    """Put a stored message into a folder with the next UID; waiters wake after the commit.

    The standard folders are created on first use; another missing folder raises FolderNotFound.
    """
    folder = await find_folder(session, mailbox_id, folder_name)
    if folder is None:
        if normalise_folder_name(folder_name) not in DEFAULT_FOLDERS:
            raise FolderNotFound(folder_name)
        folder = (await ensure_folders(session, mailbox_id))[normalise_folder_name(folder_name)]
    uid, modseq = await allocate(session, folder.id)
    stored = format_flags(flags)
    entry = FolderEntry(
        folder_id=folder.id,
        uid=uid,
        message_id=message.id,
        flags=stored,
        modseq=modseq,
        **flag_columns(stored.split()),
    )
    session.add(entry)
    await session.flush()
    unseen = "\\Seen" not in stored.split()
    await counters.adjust(
        session,
        folder.id,
        exists=1,
        unseen=int(unseen),
        recent=1,  # a new UID is at or above first_recent_uid
        unseen_may_move=unseen,
        keywords=counters.keywords_of(stored.split()),
    )
    await mark_changed(session, mailbox_id)
    return entry


async def deliver(
    session: AsyncSession,
    mailbox_id: int,
    raw: bytes,
    *,
    internal_date: dt.datetime | None = None,
    signature: dict | None = None,
    conversation_id: int | None = None,
) -> FolderEntry:
    """Store a message and file it in the INBOX of one mailbox (the common delivery case)."""
    message = await store_message(
        session,
        raw,
        internal_date=internal_date,
        signature=signature,
        conversation_id=conversation_id,
    )
    return await append(session, mailbox_id, INBOX, message)


@dataclass(frozen=True)
class Append:
    """One stored message to file into one standard folder of a mailbox."""

    mailbox_id: int
    folder: str
    message_id: int
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filed:
    """Where an ``Append`` landed."""

    folder_id: int
    uid: int
    modseq: int


async def append_many(session: AsyncSession, appends: Sequence[Append]) -> list[Filed]:
    """File several messages into standard folders (INBOX, Sent...) with few statements.

    One ``UPDATE ... RETURNING`` per distinct count reserves the UIDs of every folder
    (one new mod-sequence each), one INSERT writes every entry, one notification marks
    every mailbox changed. Entries of one folder get UIDs in the order of ``appends``.
    """
    if not appends:
        return []
    stored_flags = [format_flags(a.flags) for a in appends]
    counts: dict[tuple[int, str], _Batch] = {}
    keywords: dict[tuple[int, str], set[str]] = defaultdict(set)
    for append, flags in zip(appends, stored_flags, strict=True):
        key = (append.mailbox_id, normalise_folder_name(append.folder))
        if key[1] not in DEFAULT_FOLDERS:
            raise FolderNotFound(key[1])
        batch = counts.setdefault(key, _Batch())
        if "\\Seen" not in flags.split():
            if not batch.unseen:
                batch.first_unseen = batch.count
            batch.unseen += 1
        batch.count += 1
        keywords[key] |= counters.keywords_of(flags.split())
    reserved = await _reserve(session, counts)
    missing = {key: n for key, n in counts.items() if key not in reserved}
    if missing:
        await create_default_folders(session, sorted({m for m, _ in missing}))
        reserved.update(await _reserve(session, missing))
    next_uid = {key: first for key, (_, first, _) in reserved.items()}
    filed: list[Filed] = []
    rows: list[dict[str, Any]] = []
    for append, flags in zip(appends, stored_flags, strict=True):
        key = (append.mailbox_id, normalise_folder_name(append.folder))
        folder_id, _, modseq = reserved[key]
        uid, next_uid[key] = next_uid[key], next_uid[key] + 1
        filed.append(Filed(folder_id, uid, modseq))
        rows.append(
            {
                "folder_id": folder_id,
                "uid": uid,
                "message_id": append.message_id,
                "flags": flags,
                "modseq": modseq,
                **flag_columns(flags.split()),
            }
        )
    await session.execute(insert(FolderEntry.__table__), rows)
    for key, used in keywords.items():
        if used:
            await counters.adjust(session, reserved[key][0], keywords=used)
    await mark_changed_many(session, (a.mailbox_id for a in appends))
    return filed


@dataclass
class _Batch:
    """What ``append_many`` files into one folder: entries, unseen ones, index of the first."""

    count: int = 0
    unseen: int = 0
    first_unseen: int = 0


_folders = Folder.__table__.c
_count = bindparam("count", type_=Integer)
_unseen = bindparam("unseen", type_=Integer)
# a Core statement built once: no ORM bookkeeping for a counter update, on every delivery.
# The counters move with the UIDs (every right-hand side reads the row before the update).
_RESERVE = (
    update(Folder.__table__)
    .where(pairs_in(_folders.mailbox_id, _folders.name, "folders"))
    .values(
        uidnext=_folders.uidnext + _count,
        highest_modseq=_folders.highest_modseq + 1,
        exists_count=_folders.exists_count + _count,
        recent_count=_folders.recent_count + _count,
        unseen_count=_folders.unseen_count + _unseen,
        first_unseen_uid=case(
            (
                and_(_folders.first_unseen_uid == 0, _unseen > 0),
                _folders.uidnext + bindparam("first_unseen", type_=Integer),
            ),
            else_=_folders.first_unseen_uid,
        ),
    )
    .returning(
        _folders.id, _folders.mailbox_id, _folders.name, _folders.uidnext, _folders.highest_modseq
    )
)


async def _reserve(
    session: AsyncSession, counts: dict[tuple[int, str], _Batch]
) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(folder id, first UID, modseq) for each (mailbox, folder) found; absent folders are left
    out. One statement for the folders whose batches look alike (one each, unseen: delivery)."""
    alike: dict[tuple[int, int, int], list[tuple[int, str]]] = defaultdict(list)
    for key, batch in counts.items():
        alike[(batch.count, batch.unseen, batch.first_unseen)].append(key)
    reserved: dict[tuple[int, str], tuple[int, int, int]] = {}
    for (count, unseen, first_unseen), keys in sorted(alike.items()):
        rows = await session.execute(
            _RESERVE,
            {
                "count": count,
                "unseen": unseen,
                "first_unseen": first_unseen,
                **pairs_values("folders", sorted(keys)),
            },
        )
        for row in rows:
            reserved[(row.mailbox_id, row.name)] = (row.id, row.uidnext - count, row.highest_modseq)
    return reserved
