"""The message store: folders, exact raw bytes, ascending UIDs under concurrency, wake-ups."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from mss.db import Database
from mss.mailbox import notify
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.store import append, deliver, ensure_folders, store_message

RAW = (
    b"From: Jean Dupont <jean.dupont@mss.localhost>\r\nTo: b@mss.localhost\r\n"
    b"Subject: =?utf-8?q?R=C3=A9sultats?=\r\nMessage-ID: <r1@mss>\r\n\r\nBody\r\n"
)


async def test_standard_folders_are_created_once_with_stable_uidvalidity(
    db: Database, mailbox_id: int
) -> None:
    async with db.read() as session:
        first = await ensure_folders(session, mailbox_id)
    async with db.write() as session:
        again = await ensure_folders(session, mailbox_id)
    assert sorted(first) == ["Archive", "Drafts", "INBOX", "Sent", "Trash"]
    assert {n: f.uidvalidity for n, f in first.items()} == {
        n: f.uidvalidity for n, f in again.items()
    }
    assert again["Sent"].special_use == "\\Sent" and again["INBOX"].special_use is None


async def test_raw_bytes_are_kept_exactly_and_facts_computed(db: Database, mailbox_id: int) -> None:
    raw = RAW.replace(b"Body", b"Caf\xe9 \x00 \r\n\r\n trailing  ")
    async with db.write() as session:
        message = await store_message(
            session, raw, signature={"status": "valid", "signer_address": "a@b"}
        )
        entry = await append(session, mailbox_id, "inbox", message, flags=["\\seen", "$Label1"])
    async with db.read() as session:
        stored = (await session.scalars(select(StoredMessage))).one()
        row = (await session.scalars(select(FolderEntry))).one()
    assert stored.raw == raw and stored.size == len(raw)
    assert stored.subject == "Résultats" and stored.from_address == "jean.dupont@mss.localhost"
    assert stored.envelope[1] == "=?utf-8?q?R=C3=A9sultats?="
    assert stored.signature_status == "valid"
    assert (row.uid, row.flags) == (1, "\\Seen $Label1") and entry.uid == 1


async def test_concurrent_appends_get_distinct_ascending_uids(
    db: Database, mailbox_id: int
) -> None:
    async def one(i: int) -> int:
        async with db.write() as session:
            entry = await deliver(session, mailbox_id, RAW + str(i).encode())
            return entry.uid

    uids = await asyncio.gather(*(one(i) for i in range(20)))
    assert sorted(uids) == list(range(1, 21))
    async with db.read() as session:
        inbox = (await session.scalars(select(Folder).where(Folder.name == "INBOX"))).one()
        modseqs = (
            await session.scalars(select(FolderEntry.modseq).order_by(FolderEntry.uid))
        ).all()
    assert inbox.uidnext == 21 and inbox.highest_modseq == 21
    assert modseqs == sorted(modseqs) and len(set(modseqs)) == 20


async def test_waiters_wake_after_commit_not_after_rollback(db: Database, mailbox_id: int) -> None:
    key = notify.database_key(db.engine.url)
    wake = notify.waiters.register(key, mailbox_id)
    try:
        try:
            async with db.write() as session:
                await deliver(session, mailbox_id, RAW)
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        assert not wake.is_set()
        async with db.write() as session:
            await deliver(session, mailbox_id, RAW)
            assert not wake.is_set()
        assert wake.is_set()
    finally:
        notify.waiters.unregister(key, mailbox_id, wake)
