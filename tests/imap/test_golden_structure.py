"""Golden ENVELOPE and BODYSTRUCTURE for a corpus of tricky messages, and BODY[section] slices.

The corpus is in tests/golden/imap/messages/; each expected output is
tests/golden/imap/<name>.txt. ``MSS_UPDATE_GOLDEN=1`` rewrites them (review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mss.db import Database
from mss.mailbox.imap.sections import Section, section_bytes
from mss.mailbox.imap.wire import render
from mss.mailbox.store import deliver
from mss.mailbox.structure import describe
from tests.imap.conftest import Wire

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "imap"
CORPUS = sorted((GOLDEN / "messages").glob("*.eml"))


def rendered(raw: bytes) -> str:
    facts = describe(raw)
    return "".join(
        f"{name} {render(value).decode('utf-8')}\n"
        for name, value in (
            ("ENVELOPE", facts.envelope),
            ("BODYSTRUCTURE", facts.bodystructure),
            ("BODY", facts.body),
        )
    )


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_structure_matches_golden(path: Path) -> None:
    got = rendered(path.read_bytes())
    golden = GOLDEN / f"{path.stem}.txt"
    if os.environ.get("MSS_UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8")


def _slice(name: str, section: str) -> bytes:
    raw = (GOLDEN / "messages" / name).read_bytes()
    return section_bytes(raw, describe(raw).parts, Section.parse(section))


def test_sections_are_sliced_from_the_raw_bytes() -> None:
    assert (
        _slice("nested_multipart.eml", "1.1")
        == b"Bonjour, voici le compte rendu. R=C3=A9sultat normal."
    )
    assert _slice("nested_multipart.eml", "1.2.MIME") == (
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "
        b"quoted-printable\r\n\r\n"
    )
    assert _slice("nested_multipart.eml", "2").startswith(b"JVBERi0xLjQK")
    assert _slice("nested_multipart.eml", "HEADER.FIELDS (Subject cc)") == (
        b"Cc: secretariat@mss.localhost\r\nSubject: Compte rendu de consultation\r\n\r\n"
    )
    assert b"Subject:" not in _slice("nested_multipart.eml", "HEADER.FIELDS.NOT (SUBJECT)")
    assert _slice("message_rfc822.eml", "2.HEADER").startswith(
        b"From: radiologie@mss.localhost\r\n"
    )
    assert _slice("message_rfc822.eml", "2.1") == b"Radio normale."
    assert _slice("message_rfc822.eml", "2.2.MIME") == b"Content-Type: text/html\r\n\r\n"
    assert _slice("message_rfc822.eml", "2.TEXT").startswith(b"--alt\r\n")
    assert _slice("encoded_words.eml", "1") == "Les résultats sont normaux.\r\n".encode()
    assert _slice("digest.eml", "2.HEADER") == b"From: b@mss.localhost\r\nSubject: second\r\n\r\n"
    assert _slice("digest.eml", "9") == b""


async def test_fetch_over_the_wire_matches_golden(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    async with db.write() as session:
        for path in CORPUS:
            await deliver(session, mailbox_id, path.read_bytes())
    await wire.login()
    await wire.command("s SELECT INBOX")
    for uid, path in enumerate(CORPUS, start=1):
        golden = (GOLDEN / f"{path.stem}.txt").read_text(encoding="utf-8").splitlines()
        got = await wire.command(f"f{uid} UID FETCH {uid} (ENVELOPE BODYSTRUCTURE BODY)")
        assert got.replace("\n", "\r\n").splitlines()[0] == (
            f"* {uid} FETCH (UID {uid} {golden[0]} {golden[1]} {golden[2]})"
        ), path.name
    raw = CORPUS[0].read_bytes()
    got = await wire.command("p1 UID FETCH 1 (BODY.PEEK[]<0.20> RFC822.SIZE FLAGS)")
    assert (
        got
        == f"* 1 FETCH (UID 1 BODY[]<0> {{20}}\r\n{raw[:20].decode()} RFC822.SIZE {len(raw)} "
        f"FLAGS (\\Recent))\np1 OK UID FETCH completed\n".replace("\r\n", "\n")
    )
