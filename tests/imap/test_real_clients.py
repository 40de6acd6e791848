"""Real IMAP clients against the running server: imaplib, imapclient, aioimaplib and curl."""

from __future__ import annotations

import asyncio
import imaplib
import shutil
import ssl

import aioimaplib  # GPL-3.0: a test dependency only
import pytest
from imapclient import IMAPClient

from mss.db import Database
from tests.imap.conftest import PASSWORD, RunningImap
from tests.imap.test_transcript_basic import MESSAGE, deliver_n

USER = "jean.dupont@mss.localhost"


def _imaplib_session(port: int, context: ssl.SSLContext) -> dict:
    with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context) as client:
        client.login(USER, PASSWORD)
        assert client.select("INBOX") == ("OK", [b"2"])
        typ, data = client.append(
            "INBOX", "(\\Seen)", imaplib.Time2Internaldate(1_700_000_000), MESSAGE
        )
        assert typ == "OK" and b"APPENDUID" in data[0]
        _, fetched = client.uid("FETCH", "3", "(BODY.PEEK[] FLAGS)")
        _, search = client.search(None, "UNSEEN")
        client.store("1", "+FLAGS", "\\Deleted")
        _, expunged = client.expunge()
        _, listing = client.list()
        client.create("Suivi")
        _, _copied = client.copy("1:2", "Suivi")
        _, status = client.status("Suivi", "(MESSAGES)")
        return {
            "body": fetched[0][1],
            "flags": fetched[1],
            "search": search[0],
            "expunged": expunged,
            "listing": listing,
            "status": status[0],
        }


async def test_imaplib(
    db: Database, mailbox_id: int, imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    await deliver_n(db, mailbox_id, 2)
    result = await asyncio.to_thread(_imaplib_session, imap.tls_port, client_ssl)
    assert result["body"] == MESSAGE
    assert b"\\Seen" in result["flags"]
    assert result["search"] == b"1 2"
    assert result["expunged"] == [b"1"]
    assert b'(\\HasNoChildren \\Sent) "/" "Sent"' in result["listing"]
    assert result["status"] == b'"Suivi" (MESSAGES 2)'


def _imapclient_session(port: int, context: ssl.SSLContext) -> dict:
    with IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=context) as client:
        client.login(USER, PASSWORD)
        caps = client.capabilities()
        folders = client.list_folders()
        special = client.find_special_folder(b"\\Sent")
        client.select_folder("INBOX")
        data = client.fetch([1, 2], ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "FLAGS", "MODSEQ"])
        client.add_flags([1], ["\\Flagged", "$Urgent"])
        flags = client.get_flags([1])
        client.create_folder("Équipe")
        client.move([2], "Équipe")
        remaining = client.search(["ALL"])
        moved = client.folder_status("Équipe", ["MESSAGES"])
        client.idle()
        client.idle_done()
        return {
            "caps": caps,
            "folders": folders,
            "special": special,
            "data": data,
            "flags": flags,
            "remaining": remaining,
            "moved": moved,
            "names": [f[2] for f in client.list_folders()],
        }


async def test_imapclient(
    db: Database, mailbox_id: int, imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    await deliver_n(db, mailbox_id, 2)
    result = await asyncio.to_thread(_imapclient_session, imap.tls_port, client_ssl)
    assert b"MOVE" in result["caps"] and b"CONDSTORE" in result["caps"]
    assert result["special"] == "Sent"
    envelope = result["data"][1][b"ENVELOPE"]
    assert envelope.subject == b"Compte rendu" and envelope.from_[0].mailbox == b"alice"
    assert result["data"][1][b"RFC822.SIZE"] == len(MESSAGE)
    assert set(result["flags"][1]) == {
        b"$Urgent",
        b"\\Flagged",
        b"\\Recent",
    }  # delivered before this session
    assert result["remaining"] == [1]
    assert result["moved"][b"MESSAGES"] == 1
    assert "Équipe" in result["names"]


async def test_aioimaplib_idle(
    db: Database, mailbox_id: int, imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    await deliver_n(db, mailbox_id, 1)
    client = aioimaplib.IMAP4_SSL("127.0.0.1", imap.tls_port, ssl_context=client_ssl)
    await client.wait_hello_from_server()
    assert (await client.login(USER, PASSWORD)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    fetched = await client.uid("fetch", "1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert fetched.result == "OK" and b"Subject: Compte rendu" in bytes(fetched.lines[1])
    idle = await client.idle_start(timeout=10)
    await asyncio.sleep(0.1)
    await deliver_n(db, mailbox_id, 1)
    pushed = await client.wait_server_push(timeout=5)
    client.idle_done()
    await asyncio.wait_for(idle, 5)
    assert b"2 EXISTS" in b" ".join(p if isinstance(p, bytes) else str(p).encode() for p in pushed)
    await client.logout()


@pytest.fixture
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        raise RuntimeError("curl is required for this test: apt-get install curl")
    return path


async def _run(*argv: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out, err


async def test_curl_over_imaps(db: Database, mailbox_id: int, imap: RunningImap, curl: str) -> None:
    await deliver_n(db, mailbox_id, 2)
    base = f"imaps://127.0.0.1:{imap.tls_port}"
    code, out, err = await _run(
        curl, "--silent", "--show-error", "--insecure", f"{base}/INBOX", "-u", f"{USER}:{PASSWORD}"
    )
    assert code == 0, err
    assert out.replace(b"\r\n", b"\n") == b'* LIST (\\HasNoChildren) "/" "INBOX"\n'
    code, out, err = await _run(
        curl,
        "--silent",
        "--show-error",
        "--insecure",
        f"{base}/INBOX;UID=2",
        "-u",
        f"{USER}:{PASSWORD}",
    )
    assert code == 0, err
    assert out == MESSAGE.replace(b"cr1", b"cr2")
    code, out, err = await _run(
        curl,
        "--silent",
        "--show-error",
        "--insecure",
        f"{base}/INBOX?SUBJECT%20rendu",
        "-u",
        f"{USER}:{PASSWORD}",
    )
    assert code == 0 and out.strip() == b"* SEARCH 1 2", (out, err)
    code, out, err = await _run(
        curl, "--silent", "--insecure", f"{base}/INBOX", "-u", f"{USER}:wrong"
    )
    assert code == 67, (code, out, err)  # CURLE_LOGIN_DENIED
