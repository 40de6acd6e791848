"""Transcripts: LIST-EXTENDED (RFC 5258), RETURN (SPECIAL-USE) (RFC 6154), LIST-STATUS (RFC
5819)."""

from __future__ import annotations

from mss.db import Database
from tests.imap.conftest import Wire
from tests.imap.test_transcript_basic import deliver_n


async def _tree(wire: Wire) -> None:
    """Patients (unsubscribed) / Dupont (subscribed), Patients/Martin (unsubscribed)."""
    await wire.login()
    await wire.command("c1 CREATE Patients/Dupont")
    await wire.command("c2 CREATE Patients/Martin")
    await wire.command("c3 UNSUBSCRIBE Patients")
    await wire.command("c4 UNSUBSCRIBE Patients/Martin")
    await wire.command("c5 UNSUBSCRIBE Trash")


async def test_selection_and_return_options(wire: Wire) -> None:
    await _tree(wire)
    await wire.check(
        'a1 LIST (SUBSCRIBED) "" *',
        r"""
* LIST (\HasNoChildren \Archive \Subscribed) "/" "Archive"
* LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"
* LIST (\HasNoChildren \Subscribed) "/" "INBOX"
* LIST (\HasNoChildren \Subscribed) "/" "Patients/Dupont"
* LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
a1 OK LIST completed
""",
    )
    # RECURSIVEMATCH: an unsubscribed parent is listed because a child the pattern hides is
    # subscribed.
    await wire.check(
        'a2 LIST (SUBSCRIBED RECURSIVEMATCH) "" %',
        r"""
* LIST (\HasNoChildren \Archive \Subscribed) "/" "Archive"
* LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"
* LIST (\HasNoChildren \Subscribed) "/" "INBOX"
* LIST (\HasChildren) "/" "Patients" ("CHILDINFO" ("SUBSCRIBED"))
* LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
a2 OK LIST completed
""",
    )
    # With *, the subscribed child is listed itself: no redundant CHILDINFO for its parent.
    await wire.check(
        'a3 LIST (SUBSCRIBED RECURSIVEMATCH REMOTE) "" "Patients*"',
        r"""
* LIST (\HasNoChildren \Subscribed) "/" "Patients/Dupont"
a3 OK LIST completed
""",
    )
    await wire.check(
        'a4 LIST "" % RETURN (SUBSCRIBED CHILDREN)',
        r"""
* LIST (\HasNoChildren \Archive \Subscribed) "/" "Archive"
* LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"
* LIST (\HasNoChildren \Subscribed) "/" "INBOX"
* LIST (\HasChildren) "/" "Patients"
* LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
* LIST (\HasNoChildren \Trash) "/" "Trash"
a4 OK LIST completed
""",
    )
    await wire.check(
        'a5 LIST () "" (INBOX "Patients/%" Sent) RETURN (SPECIAL-USE)',
        r"""
* LIST (\HasNoChildren) "/" "INBOX"
* LIST (\HasNoChildren) "/" "Patients/Dupont"
* LIST (\HasNoChildren) "/" "Patients/Martin"
* LIST (\HasNoChildren \Sent) "/" "Sent"
a5 OK LIST completed
""",
    )
    await wire.check(
        'a6 LIST (SPECIAL-USE) "" * RETURN (SUBSCRIBED)',
        r"""
* LIST (\HasNoChildren \Archive \Subscribed) "/" "Archive"
* LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"
* LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
* LIST (\HasNoChildren \Trash) "/" "Trash"
a6 OK LIST completed
""",
    )
    await wire.check(
        'a7 LIST "Patients/" % RETURN (SUBSCRIBED)',
        r"""
* LIST (\HasNoChildren \Subscribed) "/" "Patients/Dupont"
* LIST (\HasNoChildren) "/" "Patients/Martin"
a7 OK LIST completed
""",
    )


async def test_bad_options(wire: Wire) -> None:
    await wire.login()
    await wire.check(
        'b1 LIST (RECURSIVEMATCH) "" *',
        "b1 BAD RECURSIVEMATCH needs another selection option (SUBSCRIBED or SPECIAL-USE)",
    )
    await wire.check(
        'b2 LIST (REMOTE RECURSIVEMATCH) "" *',
        "b2 BAD RECURSIVEMATCH needs another selection option (SUBSCRIBED or SPECIAL-USE)",
    )
    await wire.check('b3 LIST (FANCY) "" *', "b3 BAD unknown LIST selection option FANCY")
    await wire.check('b4 LIST "" * RETURN (FANCY)', "b4 BAD unknown LIST return option FANCY")
    await wire.check(
        'b5 LIST "" * RETURN (STATUS)', "b5 BAD RETURN (STATUS (...)) needs a list of status items"
    )
    await wire.check('b6 LIST "" * RETURN (STATUS (COLOUR))', "b6 BAD STATUS items are {*}")
    await wire.check('b7 LIST "" ()', "b7 BAD the list of patterns is empty")
    await wire.check('b8 LSUB (SUBSCRIBED) "" *', "b8 BAD LSUB takes no selection options")


async def test_list_status(db: Database, mailbox_id: int, wire: Wire) -> None:
    await deliver_n(db, mailbox_id, 2)
    await wire.login()
    await wire.check(
        's1 LIST "" (INBOX Drafts) RETURN (STATUS (MESSAGES UNSEEN RECENT UIDNEXT))',
        r"""
* LIST (\HasNoChildren \Drafts) "/" "Drafts"
* STATUS "Drafts" (MESSAGES 0 UNSEEN 0 RECENT 0 UIDNEXT 1)
* LIST (\HasNoChildren) "/" "INBOX"
* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 RECENT 2 UIDNEXT 3)
s1 OK LIST completed
""",
    )
    await wire.check(
        's2 LIST (SUBSCRIBED) "" "Sent" RETURN (STATUS (SIZE HIGHESTMODSEQ) CHILDREN)',
        r"""
* LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
* STATUS "Sent" (SIZE 0 HIGHESTMODSEQ 1)
s2 OK LIST completed
""",
    )
    await wire.check(
        's3 LIST "" "" RETURN (STATUS (MESSAGES))',
        r"""
* LIST (\Noselect) "/" ""
s3 OK LIST completed
""",
    )
