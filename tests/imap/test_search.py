"""SEARCH transcripts: flags, headers (decoded), dates, sizes, body text, OR/NOT, sequence and UID
sets."""

from __future__ import annotations

import datetime as dt

from mss.db import Database
from mss.mailbox.store import deliver
from tests.imap.conftest import Wire

MESSAGES = [
    (
        (
            b"From: Alice Martin <alice@mss.localhost>\r\nTo: jean.dupont@mss.localhost\r\n"
            b"Subject: =?utf-8?q?R=C3=A9sultats_sanguins?=\r\nDate: Mon, 2 Mar 2026 10:00:00 "
            b"+0100\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
            b"quoted-printable\r\n\r\n"
            b"H=C3=A9moglobine normale.\r\n"
        ),
        dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC),
    ),
    (
        b"From: labo@mss.localhost\r\nTo: jean.dupont@mss.localhost\r\nCc: alice@mss.localhost\r\n"
        b"Subject: Analyses\r\nDate: Tue, 3 Mar 2026 10:00:00 +0100\r\nX-Priority: 1\r\n\r\n"
        b"Glyc\xc3\xa9mie a jeun.\r\n" + b"x" * 2000 + b"\r\n",
        dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC),
    ),
    (
        (
            b"From: Bob <bob@mss.localhost>\r\nTo: jean.dupont@mss.localhost\r\nSubject: "
            b"Rendez-vous\r\n"
            b"Date: Wed, 4 Mar 2026 10:00:00 +0100\r\n\r\nDemain 9h.\r\n"
        ),
        dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC),
    ),
]


async def test_search_keys(db: Database, mailbox_id: int, wire: Wire) -> None:
    async with db.write() as session:
        for raw, when in MESSAGES:
            await deliver(session, mailbox_id, raw, internal_date=when)
    await wire.login()
    await wire.command("s SELECT INBOX")
    await wire.command("s1 STORE 1 +FLAGS (\\Seen \\Flagged)")
    await wire.command("s2 STORE 3 +FLAGS ($Important)")
    cases = {
        "ALL": "1 2 3",
        "SEEN": "1",
        "UNSEEN": "2 3",
        "FLAGGED": "1",
        "UNFLAGGED": "2 3",
        "KEYWORD $Important": "3",
        "UNKEYWORD $Important": "1 2",
        "ANSWERED": "",
        "RECENT": "1 2 3",
        "NEW": "2 3",
        "OLD": "",
        "DELETED": "",
        'SUBJECT "résultats"': "1",
        "FROM alice": "1",
        "CC alice": "2",
        "TO jean.dupont": "1 2 3",
        'HEADER X-Priority ""': "2",
        "HEADER X-Priority 1": "2",
        "BCC x": "",
        'BODY "hémoglobine"': "1",
        'BODY "glycémie"': "2",
        "TEXT Rendez-vous": "3",
        "TEXT demain": "3",
        "LARGER 1000": "2",
        "SMALLER 1000": "1 3",
        "BEFORE 3-Mar-2026": "1",
        "ON 3-Mar-2026": "2",
        "SINCE 3-Mar-2026": "2 3",
        "SENTBEFORE 3-Mar-2026": "1",
        "SENTON 4-Mar-2026": "3",
        "SENTSINCE 4-Mar-2026": "3",
        "OR SEEN KEYWORD $Important": "1 3",
        "NOT SEEN": "2 3",
        "(NOT SEEN) (NOT FLAGGED) SMALLER 1000": "3",
        "2:*": "2 3",
        "UID 1,3": "1 3",
        "1:2 UNSEEN": "2",
        'CHARSET UTF-8 SUBJECT "Résultats"': "1",
    }
    for i, (key, expected) in enumerate(cases.items()):
        got = await wire.command(f"q{i} SEARCH {key}")
        assert got == f"* SEARCH{' ' if expected else ''}{expected}\nq{i} OK SEARCH completed\n", (
            key
        )
    await wire.check("u1 UID SEARCH FROM labo", "* SEARCH 2\nu1 OK UID SEARCH completed")
    literal = "Résultats".encode()
    wire.send(f"u2 SEARCH CHARSET UTF-8 SUBJECT {{{len(literal)}+}}".encode() + b"\r\n" + literal)
    assert await wire.until_tagged("u2") == "* SEARCH 1\nu2 OK SEARCH completed\n"
