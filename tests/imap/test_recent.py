"""\\Recent (RFC 3501 2.3.2): the first session to see a new message gets it, once; EXAMINE takes
nothing."""

from __future__ import annotations

import ssl

from mss.db import Database
from mss.mailbox.store import deliver
from tests.imap.conftest import RunningImap, Wire
from tests.imap.test_transcript_basic import MESSAGE, deliver_n


async def test_recent_goes_to_the_first_session_only(
    db: Database, mailbox_id: int, imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    await deliver_n(db, mailbox_id, 2)
    first, second = await Wire.connect(imap, client_ssl), await Wire.connect(imap, client_ssl)
    await first.login()
    await second.login()
    await second.check(
        "e1 EXAMINE INBOX", "{*}* 2 EXISTS\n* 2 RECENT\n{*}e1 OK [READ-ONLY] EXAMINE completed"
    )
    await second.check(
        "e2 STATUS Sent (RECENT)", '* STATUS "Sent" (RECENT 0)\ne2 OK STATUS completed'
    )
    await first.check(
        "a1 SELECT INBOX", "{*}* 2 EXISTS\n* 2 RECENT\n{*}a1 OK [READ-WRITE] SELECT completed"
    )
    await first.check("a2 SEARCH NEW", "* SEARCH 1 2\na2 OK SEARCH completed")
    await first.check("a3 FETCH 1 (FLAGS)", "* 1 FETCH (FLAGS (\\Recent))\na3 OK FETCH completed")
    await first.check(
        "a4 STORE 1 +FLAGS (\\Seen)", "* 1 FETCH (FLAGS (\\Recent \\Seen))\na4 OK STORE completed"
    )
    await first.check("a5 SEARCH NEW", "* SEARCH 2\na5 OK SEARCH completed")
    await first.check("a6 SEARCH OLD", "* SEARCH\na6 OK SEARCH completed")
    await first.check(
        "a7 STORE 2 +FLAGS (\\Recent)", "a7 BAD \\Recent is not a flag that can be set"
    )
    # Taken by the first session: the others, and a new selection, see them as old.
    await second.check(
        "e3 SELECT INBOX", "{*}* 2 EXISTS\n* 0 RECENT\n{*}e3 OK [READ-WRITE] SELECT completed"
    )
    await second.check(
        "e4 STATUS INBOX (RECENT MESSAGES)",
        '* STATUS "INBOX" (RECENT 0 MESSAGES 2)\ne4 OK STATUS completed',
    )
    async with db.write() as session:
        await deliver(session, mailbox_id, MESSAGE)
    await second.check("e5 NOOP", "* 3 EXISTS\n* 1 RECENT\ne5 OK NOOP completed")
    await first.check("a8 NOOP", "* 3 EXISTS\na8 OK NOOP completed")
    await first.check("a9 UID SEARCH RECENT", "* SEARCH 1 2\na9 OK UID SEARCH completed")
    await second.check("e6 UID SEARCH RECENT", "* SEARCH 3\ne6 OK UID SEARCH completed")
    await first.check(
        "b1 SELECT INBOX", "{*}* 3 EXISTS\n* 0 RECENT\n{*}b1 OK [READ-WRITE] SELECT completed"
    )
    await first.close()
    await second.close()


async def test_appended_message_is_recent_for_whoever_sees_it(wire: Wire) -> None:
    await wire.login()
    await wire.check(
        "a1 SELECT Drafts", "{*}* 0 EXISTS\n* 0 RECENT\n{*}a1 OK [READ-WRITE] SELECT completed"
    )
    await wire.check(
        "a2 APPEND Drafts {12+}\r\nSubject: x\r\n\r\n",
        "* 1 EXISTS\n* 1 RECENT\na2 OK [APPENDUID {*} 1] APPEND completed",
    )
    await wire.check(
        "a3 STATUS Drafts (RECENT)", '* STATUS "Drafts" (RECENT 0)\na3 OK STATUS completed'
    )
