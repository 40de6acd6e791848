"""Transcripts of the RFC 3501 details Dovecot's imaptest checks and real clients rely on.

Keywords announced before use (§7.2.6), BODY[section] of encapsulated messages (§6.4.5),
ENVELOPE addresses (§7.4.2), address search keys (§6.4.4), subscriptions of folders that
are gone and \\Noselect parents in LSUB (§6.3.9, RFC 5258), and no unasked STATUS.
"""

from __future__ import annotations

import ssl

from mss.db import Database
from mss.mailbox.store import deliver
from tests.imap.conftest import RunningImap, Wire
from tests.imap.test_transcript_basic import deliver_n

SELECT_STANDARD = r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted
{*}
"""


async def _deliver(db: Database, mailbox_id: int, *messages: bytes) -> None:
    async with db.write() as session:
        for raw in messages:
            await deliver(session, mailbox_id, raw)


# --- §7.2.6: a keyword is in FLAGS and PERMANENTFLAGS before a FETCH shows it ---


async def test_store_announces_a_new_keyword_before_the_fetch(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await deliver_n(db, mailbox_id, 2)
    await wire.login()
    await wire.check("a1 SELECT INBOX", SELECT_STANDARD)
    await wire.check(
        "a2 STORE 2 +FLAGS ($Label1 $Label3)",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Label3)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Label3 \*)] Flags permitted
* 2 FETCH (FLAGS (\Recent $Label1 $Label3))
a2 OK STORE completed
""",
    )
    # Known keywords are not announced again; a new one is, with the whole set.
    await wire.check(
        "a3 STORE 1 +FLAGS ($Label1)",
        r"""
* 1 FETCH (FLAGS (\Recent $Label1))
a3 OK STORE completed
""",
    )
    await wire.check(
        "a4 STORE 1 +FLAGS.SILENT ($Label4)",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Label3 $Label4)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Label3 $Label4 \*)] Flags permitted
a4 OK STORE completed
""",
    )
    await wire.check(
        "a5 FETCH 1 (FLAGS)",
        r"""
* 1 FETCH (FLAGS (\Recent $Label1 $Label4))
a5 OK FETCH completed
""",
    )


async def test_select_and_examine_list_every_keyword(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await deliver_n(db, mailbox_id, 2)
    await wire.login()
    await wire.command("a1 SELECT INBOX")
    await wire.command("a2 STORE 1 +FLAGS.SILENT (Urgent)")
    await wire.command("a3 STORE 2 +FLAGS.SILENT ($Forwarded)")
    await wire.check(
        "a4 EXAMINE INBOX",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Forwarded Urgent)
* OK [PERMANENTFLAGS ()] Read-only
{*}
a4 OK [READ-ONLY] EXAMINE completed
""",
    )


async def test_keywords_from_another_session_or_append_are_announced(
    db: Database, mailbox_id: int, wire: Wire, imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    await deliver_n(db, mailbox_id, 2)
    await wire.login()
    await wire.check("a1 SELECT INBOX", SELECT_STANDARD)
    other = await Wire.connect(imap, client_ssl)
    try:
        await other.login()
        await other.command("b1 SELECT INBOX")
        await other.command("b2 STORE 1 +FLAGS.SILENT ($Label2)")
    finally:
        await other.close()
    await wire.check(
        "a2 NOOP",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label2)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label2 \*)] Flags permitted
* 1 FETCH (UID 1 FLAGS (\Recent $Label2))
a2 OK NOOP completed
""",
    )
    message = "Subject: note\r\n\r\nhello\r\n"
    # The new message and its keyword show at the end of APPEND or at the next command.
    got = await wire.command(f"a3 APPEND INBOX ($Label5) {{{len(message)}+}}\r\n{message}\r\n")
    got += await wire.command("a4 NOOP")
    assert "a3 OK [APPENDUID" in got
    assert got.index("* 3 EXISTS") < got.index(
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label2 $Label5)\n"
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label2 $Label5 "
        "\\*)] Flags permitted\n"
    ), got
    await wire.check(
        "a5 FETCH 3 (FLAGS)",
        r"""
* 3 FETCH (FLAGS (\Recent $Label5))
a5 OK FETCH completed
""",
    )


# --- §6.4.5: BODY[section] of message/rfc822 parts ---

DEEPEST = b"From: sub@mss.localhost\r\nSubject: submsg\r\n\r\nHello world\r\n"
MIDDLE = (
    b"From: user2@mss.localhost\r\nSubject: middle\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: message/rfc822\r\n\r\n" + DEEPEST
)
FORWARD = (
    b"From: user@mss.localhost\r\nSubject: forward\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
    b"--B\r\nContent-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n"
    + MIDDLE
    + b"\r\n--B\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee above\r\n--B--\r\n"
)
TOP_LEVEL = (
    b"From: user@mss.localhost\r\nSubject: wrapped\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: message/rfc822\r\n\r\n" + DEEPEST
)


def _literal(data: bytes) -> str:
    return f"{{{len(data)}}}\n" + data.decode().replace("\r\n", "\n")


async def test_body_sections_of_an_attached_message(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await _deliver(db, mailbox_id, FORWARD)
    await wire.login()
    await wire.command("s SELECT INBOX")
    middle_header = MIDDLE[: MIDDLE.index(b"\r\n\r\n") + 4]
    deepest_header = DEEPEST[: DEEPEST.index(b"\r\n\r\n") + 4]
    expected = {
        "1": MIDDLE,  # the whole embedded message, header and body
        "1.MIME": b"Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n",
        "1.HEADER": middle_header,
        "1.TEXT": DEEPEST,
        "1.1": DEEPEST,  # the message the embedded message itself encapsulates
        "1.1.MIME": middle_header,
        "1.1.HEADER": deepest_header,
        "1.1.TEXT": b"Hello world\r\n",
        "1.1.1": b"Hello world\r\n",
        "2": b"see above",
    }
    for i, (section, data) in enumerate(expected.items()):
        await wire.check(
            f"f{i} FETCH 1 (BODY.PEEK[{section}])",
            f"""
* 1 FETCH (BODY[{section}] {_literal(data)})
f{i} OK FETCH completed
""",
        )


async def test_body_sections_of_a_message_that_is_an_rfc822_body(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await _deliver(db, mailbox_id, TOP_LEVEL)
    await wire.login()
    await wire.command("s SELECT INBOX")
    expected = {
        "TEXT": DEEPEST,
        "1": DEEPEST,
        "1.HEADER": DEEPEST[: DEEPEST.index(b"\r\n\r\n") + 4],
        "1.TEXT": b"Hello world\r\n",
        "1.1": b"Hello world\r\n",
    }
    for i, (section, data) in enumerate(expected.items()):
        await wire.check(
            f"f{i} FETCH 1 (BODY.PEEK[{section}])",
            f"""
* 1 FETCH (BODY[{section}] {_literal(data)})
f{i} OK FETCH completed
""",
        )
    await wire.check(
        "b1 FETCH 1 (BODYSTRUCTURE)",
        r"""
* 1 FETCH (BODYSTRUCTURE ("message" "rfc822" NIL NIL NIL "7BIT" 57 (NIL "submsg" ((NIL NIL "sub" "mss.localhost")) ((NIL NIL "sub" "mss.localhost")) ((NIL NIL "sub" "mss.localhost")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 13 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL))
b1 OK FETCH completed
""",
    )


# --- §7.4.2: ENVELOPE addresses (the cases of Dovecot's imaptest fetch-envelope) ---

ENVELOPES = [
    (
        (
            b"Date: Sat, 01 Feb 2007 01:02:03 +0200\r\nFrom: user@domain (Real Name)\r\n"
            b"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nCc: group:;, group2: "
            b"(foo) ;\r\n\r\nbody\r\n"
        ),
        (
            '"Sat, 01 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) '
            '(("Real Name" NIL "user" "domain"))'
            ' (("Real Name" NIL "user" "domain")) ((NIL NIL "group" NIL) (NIL NIL "g1" '
            '"d1.org") (NIL NIL "g2" "d2.org")'
            ' (NIL NIL NIL NIL) (NIL NIL "group2" NIL) (NIL NIL "g3" "d3.org") (NIL NIL NIL NIL))'
            ' ((NIL NIL "group" NIL) (NIL NIL NIL NIL) (NIL NIL "group2" NIL) (NIL NIL NIL '
            "NIL)) NIL NIL NIL"
        ),
    ),
    (
        b"From: user@domain (Real Name)\r\nSender: \r\nReply-To: \r\n\r\nbody\r\n",
        (
            'NIL NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain"))'
            ' (("Real Name" NIL "user" "domain")) NIL NIL NIL NIL NIL'
        ),
    ),
    # A comment before the address is no name.
    (
        b"From: <@route:user@domain>\r\nTo: (note) plain@domain\r\n\r\nbody\r\n",
        (
            'NIL NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL '
            '"@route" "user" "domain"))'
            ' ((NIL NIL "plain" "domain")) NIL NIL NIL NIL'
        ),
    ),
    # Encoded words go out as written (the client decodes them); quoted local parts unquoted.
    (
        (
            b"From: =?utf-8?q?Ren=C3=A9_Martin?= <rene@mss.localhost>\r\nSender: Mr. Smith "
            b"<smith@mss.localhost>\r\n"
            b'To: "john..doe"@mss.localhost, "Dupont, Jean" <jean@mss.localhost>\r\n\r\nbody\r\n'
        ),
        (
            'NIL NIL (("=?utf-8?q?Ren=C3=A9_Martin?=" NIL "rene" "mss.localhost")) (("Mr. '
            'Smith" NIL "smith" "mss.localhost"))'
            ' (("=?utf-8?q?Ren=C3=A9_Martin?=" NIL "rene" "mss.localhost")) ((NIL NIL '
            '"john..doe" "mss.localhost")'
            ' ("Dupont, Jean" NIL "jean" "mss.localhost")) NIL NIL NIL NIL'
        ),
    ),
]


async def test_envelope_addresses(db: Database, mailbox_id: int, wire: Wire) -> None:
    await _deliver(db, mailbox_id, *(raw for raw, _envelope in ENVELOPES))
    await wire.login()
    await wire.command("s SELECT INBOX")
    for seq, (_raw, envelope) in enumerate(ENVELOPES, start=1):
        await wire.check(
            f"e{seq} FETCH {seq} (ENVELOPE)",
            f"""
* {seq} FETCH (ENVELOPE ({envelope}))
e{seq} OK FETCH completed
""",
        )


# --- §6.4.4: FROM, TO, CC, BCC contain the string: names, addresses, parts of either ---

ADDRESSED = [
    b"From: user-from@domain.org\r\nTo: user-to@domain.org\r\nCc: user-cc@domain.org\r\nBcc: "
    b"user-bcc@domain.org\r\n",
    (
        b"From: RealFrom <user-from@domain.org>\r\nTo: RealTo <user-to@domain.org>\r\nCc: "
        b"RealCc <user-cc@domain.org>\r\n"
        b"Bcc: RealBcc <user-bcc@domain.org>\r\n"
    ),
    (
        b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: "
        b"<user-to@domain.org>\r\nCc: <user-cc@domain.org>\r\n"
        b"Bcc: <user-bcc@domain.org>\r\n"
    ),
    (
        b"From: user-from@domain.org (RealFrom)\r\nTo: user-to@domain.org (RealTo)\r\nCc: "
        b"user-cc@domain.org (RealCc)\r\n"
        b"Bcc: user-bcc@domain.org (RealBcc)\r\n"
    ),
    b"From: user-from1@domain.org, user-from2@domain.org\r\nCc: user-cc@domain.org\r\n",
    b"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  groupname2: "
    b"groupuser3@domain.org;\r\n",
    b"From: =?utf-8?q?Ren=C3=A9_Martin?= <rene@mss.localhost>\r\n",
]


async def test_address_search_keys(db: Database, mailbox_id: int, wire: Wire) -> None:
    await _deliver(db, mailbox_id, *(head + b"\r\nbody\r\n" for head in ADDRESSED))
    await wire.login()
    await wire.command("s SELECT INBOX")
    for i, (criteria, found) in enumerate(
        [
            ("FROM user-from@domain.org", "1 2 3 4"),
            ("TO user-to@domain.org", "1 2 3 4"),
            ("CC user-cc@domain.org", "1 2 3 4 5"),
            ("BCC user-bcc@domain.org", "1 2 3 4"),
            ("FROM realfrom", "2 4"),
            ("BCC realbcc", "2 4"),
            ("FROM ser-fro", "1 2 3 4 5"),
            ("FROM ealfro", "2 4"),
            ("FROM user-from2", "5"),
            ("TO groupname2", "6"),
            ("TO groupuser3", "6"),
            ("TO groupuser4", ""),
            ('HEADER FROM ""', "1 2 3 4 5 7"),
            ('FROM "rené"', "7"),
            ('FROM "Martin <rene@"', "7"),
            ("OR FROM realfrom TO groupuser1", "2 4 6"),
        ]
    ):
        await wire.check(
            f"q{i} SEARCH {criteria}",
            f"""
* SEARCH{" " + found if found else ""}
q{i} OK SEARCH completed
""",
        )


# --- §6.3.6, §6.3.9, RFC 5258: subscriptions outlive their folder; LSUB's \Noselect parents ---


async def test_a_deleted_folder_stays_subscribed(wire: Wire) -> None:
    await wire.login()
    await wire.command("c1 CREATE Dossiers/Dupont")
    await wire.command("c2 CREATE Dossiers/Martin")
    await wire.command("c3 UNSUBSCRIBE Dossiers")
    await wire.command("c4 DELETE Dossiers/Martin")
    await wire.check(
        'l1 LSUB "" Dossiers*',
        r"""
* LSUB () "/" "Dossiers/Dupont"
* LSUB (\Noselect) "/" "Dossiers/Martin"
l1 OK LSUB completed
""",
    )
    # %: the unsubscribed parent stands for its subscribed children, as \Noselect.
    await wire.check(
        'l2 LSUB "" %',
        r"""
* LSUB () "/" "Archive"
* LSUB (\Noselect) "/" "Dossiers"
* LSUB () "/" "Drafts"
* LSUB () "/" "INBOX"
* LSUB () "/" "Sent"
* LSUB () "/" "Trash"
l2 OK LSUB completed
""",
    )
    await wire.check(
        'l3 LIST (SUBSCRIBED) "" "Dossiers/*"',
        r"""
* LIST (\HasNoChildren \Subscribed) "/" "Dossiers/Dupont"
* LIST (\NonExistent \Subscribed) "/" "Dossiers/Martin"
l3 OK LIST completed
""",
    )
    # Plain LIST shows folders that exist, RETURN (SUBSCRIBED) only marks them.
    await wire.check(
        'l4 LIST "" "Dossiers/*" RETURN (SUBSCRIBED)',
        r"""
* LIST (\HasNoChildren \Subscribed) "/" "Dossiers/Dupont"
l4 OK LIST completed
""",
    )
    # No STATUS for a name that is no folder (RFC 5819 §2).
    await wire.check(
        'l5 LIST (SUBSCRIBED) "" "Dossiers/*" RETURN (STATUS (MESSAGES UIDVALIDITY))',
        r"""
* LIST (\HasNoChildren \Subscribed) "/" "Dossiers/Dupont"
* STATUS "Dossiers/Dupont" (MESSAGES 0 UIDVALIDITY {*})
* LIST (\NonExistent \Subscribed) "/" "Dossiers/Martin"
l5 OK LIST completed
""",
    )
    # Created again, the folder is subscribed as it was; unsubscribed, the name is gone.
    await wire.check("c5 CREATE Dossiers/Martin", "c5 OK CREATE completed")
    await wire.check(
        'l6 LSUB "" Dossiers/*',
        r"""
* LSUB () "/" "Dossiers/Dupont"
* LSUB () "/" "Dossiers/Martin"
l6 OK LSUB completed
""",
    )
    await wire.command("c6 DELETE Dossiers/Martin")
    await wire.check("c7 UNSUBSCRIBE Dossiers/Martin", "c7 OK UNSUBSCRIBE completed")
    await wire.check(
        'l7 LIST (SUBSCRIBED) "" "Dossiers/*"',
        r"""
* LIST (\HasNoChildren \Subscribed) "/" "Dossiers/Dupont"
l7 OK LIST completed
""",
    )


async def test_a_lost_subscription_under_a_parent_that_is_gone(wire: Wire) -> None:
    await wire.login()
    await wire.command("c1 CREATE Ancien/Notes")
    await wire.command("c2 DELETE Ancien/Notes")
    await wire.command("c3 DELETE Ancien")
    await wire.check(
        'l1 LSUB "" %',
        r"""
* LSUB (\Noselect) "/" "Ancien"
* LSUB () "/" "Archive"
* LSUB () "/" "Drafts"
* LSUB () "/" "INBOX"
* LSUB () "/" "Sent"
* LSUB () "/" "Trash"
l1 OK LSUB completed
""",
    )
    await wire.check(
        'l2 LIST (SUBSCRIBED RECURSIVEMATCH) "" "An%"',
        r"""
* LIST (\NonExistent \Subscribed) "/" "Ancien" ("CHILDINFO" ("SUBSCRIBED"))
l2 OK LIST completed
""",
    )
    await wire.check(
        'l3 LIST (SUBSCRIBED) "" "Ancien*"',
        r"""
* LIST (\NonExistent \Subscribed) "/" "Ancien"
* LIST (\NonExistent \Subscribed) "/" "Ancien/Notes"
l3 OK LIST completed
""",
    )


# --- no untagged STATUS but for STATUS and LIST-STATUS (RFC 3501 §7.2.4) ---


async def test_no_unasked_status(db: Database, mailbox_id: int, wire: Wire) -> None:
    await deliver_n(db, mailbox_id, 1)
    await wire.login()
    await wire.check("c1 CREATE Projets", "c1 OK CREATE completed")
    await wire.check("c2 RENAME Projets Projets2026", "c2 OK RENAME completed")
    await wire.check(
        "c3 SELECT Projets2026",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted
* 0 EXISTS
* 0 RECENT
* OK [UIDVALIDITY {*}] UIDs valid
* OK [UIDNEXT 1] Predicted next UID
* OK [HIGHESTMODSEQ 1] Highest
c3 OK [READ-WRITE] SELECT completed
""",
    )
    await wire.check("c5 SELECT INBOX", SELECT_STANDARD + "c5 OK [READ-WRITE] SELECT completed")
    await wire.check("c6 COPY 1 Projets2026", "c6 OK [COPYUID {*}] COPY completed")
    await wire.check("c7 DELETE Projets2026", "c7 OK DELETE completed")
    await wire.check("c8 NOOP", "c8 OK NOOP completed")
