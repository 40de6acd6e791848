"""Two sessions on one mailbox see each other's changes: EXISTS, EXPUNGE renumbering, FETCH FLAGS,
IDLE."""

from __future__ import annotations

import ssl

from mss.db import Database
from mss.mailbox.store import deliver
from tests.imap.conftest import RunningImap, Wire
from tests.imap.test_transcript_basic import MESSAGE, deliver_n


async def test_changes_reach_the_other_session_at_its_next_command(
    db: Database, mailbox_id: int, imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    await deliver_n(db, mailbox_id, 4)
    one, two = await Wire.connect(imap, client_ssl), await Wire.connect(imap, client_ssl)
    for client in (one, two):
        await client.login()
        await client.command("s SELECT INBOX")
    await one.check("a1 STORE 1 +FLAGS.SILENT (\\Flagged)", "a1 OK STORE completed")
    await one.check("a2 STORE 2,4 +FLAGS.SILENT (\\Deleted)", "a2 OK STORE completed")
    await one.check("a3 EXPUNGE", "* 2 EXPUNGE\n* 3 EXPUNGE\na3 OK EXPUNGE completed")
    # A FETCH must not renumber: the other session gets flags now, the expunges at its next NOOP.
    await two.check(
        "b1 FETCH 1 (FLAGS)",
        r"""
* 1 FETCH (UID 1 FLAGS (\Flagged))
* 1 FETCH (FLAGS (\Flagged))
b1 OK FETCH completed
""",
    )
    await two.check(
        "b2 NOOP",
        """
* 2 EXPUNGE
* 3 EXPUNGE
b2 OK NOOP completed
""",
    )
    async with db.write() as session:
        await deliver(session, mailbox_id, MESSAGE)
    # The first session to see the new message gets it as \Recent (RFC 3501 2.3.2), the other does
    # not.
    await two.check(
        "b3 UID FETCH 1:* (FLAGS)",
        r"""
* 3 EXISTS
* 1 RECENT
* 1 FETCH (UID 1 FLAGS (\Flagged))
* 2 FETCH (UID 3 FLAGS ())
* 3 FETCH (UID 5 FLAGS (\Recent))
b3 OK UID FETCH completed
""",
    )
    await one.check(
        "a4 UID STORE 3 FLAGS (\\Seen $Urgent)",
        r"""
* 3 EXISTS
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent \*)] Flags permitted
* 2 FETCH (UID 3 FLAGS (\Recent \Seen $Urgent))
a4 OK UID STORE completed
""",
    )
    await two.check(
        "b4 CHECK",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent \*)] Flags permitted
* 2 FETCH (UID 3 FLAGS (\Seen $Urgent))
b4 OK CHECK completed
""",
    )
    await one.close()
    await two.close()


async def test_idle_wakes_on_delivery_and_on_the_other_sessions_changes(
    db: Database, mailbox_id: int, imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    await deliver_n(db, mailbox_id, 2)
    idler, other = await Wire.connect(imap, client_ssl), await Wire.connect(imap, client_ssl)
    for client in (idler, other):
        await client.login()
        await client.command("s SELECT INBOX")
    idler.send("i1 IDLE")
    assert await idler.read_line() == "+ idling\r\n"
    async with db.write() as session:
        await deliver(session, mailbox_id, MESSAGE)
    assert await idler.read_line(timeout=5) == "* 3 EXISTS\r\n"
    assert (
        await idler.read_line(timeout=5) == "* 3 RECENT\r\n"
    )  # selected first: all three are its own
    await other.check("o1 STORE 1 +FLAGS.SILENT (\\Deleted)", "* 3 EXISTS\no1 OK STORE completed")
    assert await idler.read_line(timeout=5) == "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))\r\n"
    await other.check("o2 EXPUNGE", "* 1 EXPUNGE\no2 OK EXPUNGE completed")
    assert await idler.read_line(timeout=5) == "* 1 EXPUNGE\r\n"
    idler.send("DONE")
    assert await idler.read_line() == "i1 OK IDLE terminated\r\n"
    await idler.check(
        "i2 FETCH 1:* (UID)", "* 1 FETCH (UID 2)\n* 2 FETCH (UID 3)\ni2 OK FETCH completed"
    )
    await idler.close()
    await other.close()


async def test_condstore_and_qresync(db: Database, mailbox_id: int, wire: Wire) -> None:
    await deliver_n(db, mailbox_id, 3)
    await wire.login()
    await wire.check("a1 ENABLE QRESYNC", "* ENABLED QRESYNC\na1 OK ENABLE completed")
    got = await wire.command("a2 SELECT INBOX")
    uidvalidity = int(got.split("UIDVALIDITY ")[1].split("]")[0])
    await wire.check(
        "a3 UID STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)",
        "a3 OK [MODIFIED 1] Conditional STORE failed",
    )
    await wire.check(
        "a4 UID STORE 1 (UNCHANGEDSINCE 2) +FLAGS (\\Seen)",
        r"""
* 1 FETCH (UID 1 FLAGS (\Recent \Seen) MODSEQ (5))
a4 OK UID STORE completed
""",
    )
    await wire.check("a5 STORE 3 +FLAGS.SILENT (\\Deleted)", "a5 OK STORE completed")
    await wire.check("a6 EXPUNGE", "* VANISHED 3\na6 OK EXPUNGE completed")
    await wire.check(
        "a7 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)",
        r"""
* VANISHED (EARLIER) 3
* 1 FETCH (UID 1 FLAGS (\Recent \Seen) MODSEQ (5))
a7 OK UID FETCH completed
""",
    )
    await wire.check("a8 SEARCH MODSEQ 5", "* SEARCH 1 (MODSEQ 5)\na8 OK SEARCH completed")
    await wire.check(
        f"a9 SELECT INBOX (QRESYNC ({uidvalidity} 4 1:3))",
        r"""
* OK [CLOSED] Previous mailbox closed
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
{*}* OK [HIGHESTMODSEQ 7] Highest
* VANISHED (EARLIER) 3
* 1 FETCH (UID 1 FLAGS (\Seen) MODSEQ (5))
a9 OK [READ-WRITE] SELECT completed
""",
    )
