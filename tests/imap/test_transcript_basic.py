"""Transcripts of the basic RFC 3501 session: greeting, login, SELECT, FETCH, STORE, EXPUNGE."""

from __future__ import annotations

from mss.db import Database
from mss.mailbox.store import deliver
from tests.imap.conftest import Wire

MESSAGE = (
    b"From: Alice Martin <alice@mss.localhost>\r\nTo: jean.dupont@mss.localhost\r\n"
    b"Subject: Compte rendu\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <cr1@mss>\r\n"
    b"\r\nBonjour,\r\nvoici le compte rendu.\r\n"
)


async def deliver_n(db: Database, mailbox_id: int, n: int) -> None:
    async with db.write() as session:
        for i in range(n):
            await deliver(session, mailbox_id, MESSAGE.replace(b"cr1", b"cr%d" % (i + 1)))


async def test_select_fetch_store_expunge(db: Database, mailbox_id: int, wire: Wire) -> None:
    await deliver_n(db, mailbox_id, 3)
    await wire.login()
    await wire.check(
        "a1 SELECT INBOX",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted
* 3 EXISTS
* 3 RECENT
* OK [UNSEEN 1] First unseen
* OK [UIDVALIDITY {*}] UIDs valid
* OK [UIDNEXT 4] Predicted next UID
* OK [HIGHESTMODSEQ 4] Highest
a1 OK [READ-WRITE] SELECT completed
""",
    )
    await wire.check(
        "a2 UID FETCH 1:* (FLAGS)",
        r"""
* 1 FETCH (UID 1 FLAGS (\Recent))
* 2 FETCH (UID 2 FLAGS (\Recent))
* 3 FETCH (UID 3 FLAGS (\Recent))
a2 OK UID FETCH completed
""",
    )
    await wire.check(
        "a3 STORE 2 +FLAGS (\\Deleted)",
        r"""
* 2 FETCH (FLAGS (\Deleted \Recent))
a3 OK STORE completed
""",
    )
    await wire.check(
        "a4 FETCH 1 (RFC822.SIZE ENVELOPE)",
        r"""
* 1 FETCH (RFC822.SIZE 193 ENVELOPE ("Mon, 2 Mar 2026 10:00:00 +0100" "Compte rendu" (("Alice Martin" NIL "alice" "mss.localhost")) (("Alice Martin" NIL "alice" "mss.localhost")) (("Alice Martin" NIL "alice" "mss.localhost")) ((NIL NIL "jean.dupont" "mss.localhost")) NIL NIL NIL "<cr1@mss>"))
a4 OK FETCH completed
""",
    )
    await wire.check(
        "a5 FETCH 3 (BODY[TEXT])",
        r"""
* 3 FETCH (BODY[TEXT] {34}
Bonjour,
voici le compte rendu.
 FLAGS (\Recent \Seen))
a5 OK FETCH completed
""",
    )
    await wire.check(
        "a6 EXPUNGE",
        r"""
* 2 EXPUNGE
a6 OK EXPUNGE completed
""",
    )
    await wire.check(
        "a7 UID SEARCH UNSEEN",
        r"""
* SEARCH 1
a7 OK UID SEARCH completed
""",
    )
    await wire.check(
        "a8 LOGOUT",
        r"""
* BYE MSS hub IMAP signing off
a8 OK LOGOUT completed
""",
    )
