"""Folder counters kept at write time: random writes through every store function, then a recount.

The counters (EXISTS, UNSEEN, RECENT, first unseen, keywords) live in the folder's row and
every writer adjusts them in its transaction; :func:`mss.mailbox.counters.verify` recounts
from the entries and names any difference. SELECT, STATUS and flag SEARCH read the row and
the partial indexes, so the wire must agree with a recount too.
"""

from __future__ import annotations

import random

from sqlalchemy import select

from mss.config import Settings
from mss.db import Database
from mss.doctor import check_folder_counters
from mss.mailbox import counters
from mss.mailbox.entries import copy_entries, load_entries, remove_entries, store_flags
from mss.mailbox.folders import claim_recent, create_folder, rename_folder
from mss.mailbox.models import Folder
from mss.mailbox.store import (
    INBOX,
    Append,
    append,
    append_many,
    deliver,
    find_folder,
    insert_messages,
    message_values,
    store_message,
)
from tests.imap.conftest import Wire

RAW = b"From: a@mss.localhost\r\nTo: b@mss.localhost\r\nSubject: n\r\n\r\nBody\r\n"
FLAGS = ["\\Seen", "\\Deleted", "\\Flagged", "\\Answered", "\\Draft", "$Label1", "Urgent"]


async def _uids(db: Database, folder_id: int) -> list[int]:
    async with db.read() as session:
        return [uid for uid, _f, _m in await load_entries(session, folder_id)]


async def _folder_id(db: Database, mailbox_id: int, name: str) -> int:
    async with db.read() as session:
        folder = await find_folder(session, mailbox_id, name)
    assert folder is not None
    return folder.id


async def _random_step(rng: random.Random, db: Database, mailbox_id: int, names: list[str]) -> str:
    name = rng.choice(names)
    folder_id = await _folder_id(db, mailbox_id, name)
    uids = await _uids(db, folder_id)
    some = rng.sample(uids, min(len(uids), rng.randint(1, 6))) if uids else []
    action = rng.choice(
        ["deliver", "append", "many", "store", "store", "copy", "move", "expunge", "recent"]
    )
    async with db.write() as session:
        if action == "deliver":
            await deliver(session, mailbox_id, RAW)
        elif action == "append":
            message = await store_message(session, RAW)
            await append(session, mailbox_id, name, message, rng.sample(FLAGS, rng.randint(0, 3)))
        elif action == "many":
            ids = await insert_messages(session, [message_values(RAW) for _ in range(3)])
            await append_many(
                session,
                [
                    Append(mailbox_id, rng.choice([INBOX, "Sent"]), m, tuple(rng.sample(FLAGS, 1)))
                    for m in ids
                ],
            )
        elif action == "store" and some:
            mode = rng.choice(["add", "remove", "set"])
            await store_flags(
                session, mailbox_id, folder_id, some, mode, rng.sample(FLAGS, rng.randint(0, 3))
            )
        elif action in ("copy", "move") and some:
            target = await find_folder(session, mailbox_id, rng.choice(names))
            assert target is not None
            if target.id != folder_id:
                pairs = await copy_entries(session, mailbox_id, folder_id, some, target)
                if action == "move":
                    await remove_entries(
                        session, mailbox_id, folder_id, [s for s, _ in pairs], only_deleted=False
                    )
        elif action == "expunge" and uids:
            await remove_entries(session, mailbox_id, folder_id, uids, only_deleted=True)
        elif action == "recent" and uids:
            await claim_recent(session, folder_id, rng.choice(uids) + 1)
    return f"{action} {name} {sorted(some)}"


async def test_random_writes_keep_the_counters_equal_to_a_recount(
    db: Database, mailbox_id: int
) -> None:
    rng = random.Random(18)
    async with db.write() as session:
        await create_folder(session, mailbox_id, "Projets/2026")
    names = [INBOX, "Sent", "Trash", "Projets/2026"]
    done = []
    for _ in range(160):
        done.append(await _random_step(rng, db, mailbox_id, names))
        async with db.read() as session:
            problems = await counters.verify(session)
        assert problems == [], done[-5:]
    async with db.write() as session:  # RENAME INBOX moves every entry to a new folder
        await rename_folder(session, mailbox_id, INBOX, "Old inbox")
    async with db.read() as session:
        assert await counters.verify(session) == []
        folders = (await session.scalars(select(Folder).order_by(Folder.id))).all()
        assert sum(f.exists_count for f in folders) > 0
        assert any(f.keywords for f in folders)


async def test_the_counters_notice_a_wrong_row(
    db: Database, mailbox_id: int, settings: Settings
) -> None:
    """``mss doctor`` recounts every folder and names the one whose row is wrong."""
    async with db.write() as session:
        await deliver(session, mailbox_id, RAW)
        folder_id = await _folder_id(db, mailbox_id, INBOX)
    async with db.write() as session:
        folder = await session.get(Folder, folder_id)
        assert folder is not None and (folder.exists_count, folder.unseen_count) == (1, 1)
        folder.unseen_count = 7
    async with db.read() as session:
        assert await counters.verify(session) == [
            f"folder {folder_id}: unseen is 7, the entries say 1"
        ]
    check = await check_folder_counters(settings)
    assert not check.ok and str(check) == (
        f"FAIL folder counters: folder {folder_id}: unseen is 7, the entries say 1"
    )
    async with db.write() as session:
        await counters.rebuild(session, folder_id)
    assert str(await check_folder_counters(settings)) == (
        "OK   folder counters: 5 folders agree with their entries"
    )


async def test_select_status_and_flag_search_agree_with_a_recount(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    async with db.write() as session:
        ids = await insert_messages(session, [message_values(RAW) for _ in range(12)])
        await append_many(
            session,
            [Append(mailbox_id, INBOX, m, ("\\Seen",) if i % 3 else ()) for i, m in enumerate(ids)],
        )
    await wire.login()
    lines = await wire.command("a SELECT INBOX")
    assert "* 12 EXISTS" in lines and "* 12 RECENT" in lines
    assert "* OK [UNSEEN 1] First unseen" in lines
    assert (await wire.command("b UID SEARCH UNSEEN")).splitlines()[0] == "* SEARCH 1 4 7 10"
    await wire.command("c UID STORE 1,4 +FLAGS.SILENT (\\Seen \\Deleted $Done)")
    assert (await wire.command("d UID SEARCH UNSEEN")).splitlines()[0] == "* SEARCH 7 10"
    assert (await wire.command("e UID SEARCH DELETED")).splitlines()[0] == "* SEARCH 1 4"
    assert (await wire.command("f SEARCH SEEN")).splitlines()[0] == "* SEARCH 1 2 3 4 5 6 8 9 11 12"
    assert (await wire.command("g UID SEARCH UNDELETED UNSEEN")).splitlines()[0] == "* SEARCH 7 10"
    assert (await wire.command("h UID SEARCH KEYWORD $Done")).splitlines()[0] == "* SEARCH 1 4"
    await wire.command("i EXPUNGE")
    assert (await wire.command("j STATUS INBOX (MESSAGES UNSEEN RECENT UIDNEXT)")).splitlines()[
        0
    ] == ('* STATUS "INBOX" (MESSAGES 10 UNSEEN 2 RECENT 0 UIDNEXT 13)')
    await wire.command("k CLOSE")
    lines = await wire.command("l EXAMINE INBOX")
    assert "* 10 EXISTS" in lines and "* OK [UNSEEN 5] First unseen" in lines
    assert any(line.startswith("* FLAGS (") and "$Done" in line for line in lines.splitlines())
    async with db.read() as session:
        assert await counters.verify(session) == []


async def test_a_second_select_sees_every_change_made_between(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    """A big folder's second SELECT starts from the process's last view: changes made in
    between (new, expunged, flagged) must all be there."""
    async with db.write() as session:
        ids = await insert_messages(session, [message_values(RAW) for _ in range(1500)])
        await append_many(session, [Append(mailbox_id, "Archive", m) for m in ids])
    await wire.login()
    assert "* 1500 EXISTS" in await wire.command("a SELECT Archive")
    await wire.command("b UID STORE 1:10 +FLAGS.SILENT (\\Deleted)")
    await wire.command("c UID STORE 11 +FLAGS.SILENT (\\Seen $Kept)")
    await wire.command("d EXPUNGE")
    await wire.command("e CLOSE")
    async with db.write() as session:
        await deliver(session, mailbox_id, RAW)  # into INBOX: Archive's view stays the same
        message = await store_message(session, RAW)
        await append(session, mailbox_id, "Archive", message, ["\\Flagged"])
    lines = await wire.command("f SELECT Archive")
    assert "* 1491 EXISTS" in lines and "* OK [UNSEEN 2] First unseen" in lines
    assert (await wire.command("g FETCH 1 (UID FLAGS)")).splitlines()[
        0
    ] == "* 1 FETCH (UID 11 FLAGS (\\Seen $Kept))"
    assert (await wire.command("h UID SEARCH FLAGGED")).splitlines()[0] == "* SEARCH 1501"
    assert (await wire.command("i FETCH 1491 (UID)")).splitlines()[0] == "* 1491 FETCH (UID 1501)"
