"""mbsync (isync) keeps a 1,000-message folder in sync both ways: flags, moves, deletions, new
mail."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import os
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from mss.db import Database
from mss.mailbox.entries import store_flags
from mss.mailbox.folders import create_folder
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.store import append, deliver, store_message
from tests.fixtures_pki import DevPki
from tests.imap.conftest import PASSWORD, RunningImap

COUNT = 1000
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen"}


def message(n: int) -> bytes:
    return (
        f"From: patient{n % 7}@mss.localhost\r\nTo: jean.dupont@mss.localhost\r\n"
        f"Subject: Suivi {n}\r\nMessage-ID: <m{n}@mss.localhost>\r\n"
        f"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n\r\nMessage {n}\r\n"
    ).encode()


@pytest.fixture
def mbsync() -> str:
    path = shutil.which("mbsync")
    if path is None:
        raise RuntimeError("mbsync is required for this test: apt-get install isync")
    return path


def write_config(tmp: Path, imap: RunningImap, cert: Path) -> Path:
    """An mbsyncrc trusting ``cert`` (the PKI's root); mbsync checks the host against DNS names
    only."""
    config = tmp / "mbsyncrc"
    (tmp / "mail").mkdir(exist_ok=True)
    config.write_text(f"""IMAPAccount hub
Host localhost
Port {imap.tls_port}
User jean.dupont@mss.localhost
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {cert}

IMAPStore hub-remote
Account hub

MaildirStore local
Path {tmp}/mail/
Inbox {tmp}/mail/INBOX
SubFolders Verbatim

Channel hub
Far :hub-remote:
Near :local:
Patterns Patients Archive
Create Both
Expunge Both
SyncState *
""")
    return config


async def run_mbsync(binary: str, config: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(config),
        "-a",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, (out.decode(), err.decode())


def local_state(folder: Path) -> dict[str, tuple[set[str], bytes, Path]]:
    """Message-ID -> (flags, raw, path) of every message in a maildir."""
    out = {}
    for sub in ("cur", "new"):
        for path in (folder / sub).iterdir():
            raw = path.read_bytes()
            msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
                raw, headersonly=True
            )
            letters = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            out[msg["Message-ID"]] = (
                {MAILDIR_FLAGS[c] for c in letters if c in MAILDIR_FLAGS},
                raw,
                path,
            )
    return out


async def server_state(
    db: Database, mailbox_id: int, folder: str
) -> dict[str, tuple[set[str], bytes]]:
    async with db.read() as session:
        rows = await session.execute(
            select(StoredMessage.message_id_header, FolderEntry.flags, StoredMessage.raw)
            .join(FolderEntry, FolderEntry.message_id == StoredMessage.id)
            .join(Folder, Folder.id == FolderEntry.folder_id)
            .where(Folder.mailbox_id == mailbox_id, Folder.name == folder)
        )
        return {mid: (set(flags.split()) - {"\\Recent"}, raw) for mid, flags, raw in rows}


def _strip_tuid(raw: bytes) -> bytes:
    return re.sub(rb"^X-TUID: [^\r\n]*\r?\n", b"", raw, flags=re.MULTILINE)


async def test_mbsync_both_ways(
    db: Database, mailbox_id: int, imap: RunningImap, mbsync: str, tmp_path: Path, dev_pki: DevPki
) -> None:
    async with db.write() as session:
        await create_folder(session, mailbox_id, "Patients")
        for n in range(COUNT):
            await append(
                session,
                mailbox_id,
                "Patients",
                await store_message(session, message(n)),
                flags=["\\Seen"] if n % 10 == 0 else [],
            )
    config = write_config(tmp_path, imap, dev_pki.root_cert)
    await run_mbsync(mbsync, config)

    patients = tmp_path / "mail" / "Patients"
    local = local_state(patients)
    assert len(local) == COUNT
    for n in range(COUNT):  # every message arrived byte for byte, with its flags
        flags, raw, _ = local[f"<m{n}@mss.localhost>"]
        # mbsync writes LF line ends and its own X-TUID tracking header into the maildir copy
        assert _strip_tuid(raw) == message(n).replace(b"\r\n", b"\n"), n
        assert flags == ({"\\Seen"} if n % 10 == 0 else set()), n

    # Local changes: flags, deletions, moves to Archive, new messages.
    for n in range(0, 200, 2):
        _, _, path = local[f"<m{n}@mss.localhost>"]
        base, _, letters = path.name.partition(":2,")
        path.rename(patients / "cur" / f"{base}:2,{''.join(sorted(set(letters) | {'S', 'F'}))}")
    for n in range(300, 330):
        local[f"<m{n}@mss.localhost>"][2].unlink()
    archive = tmp_path / "mail" / "Archive"
    for sub in ("cur", "new", "tmp"):
        (archive / sub).mkdir(parents=True, exist_ok=True)
    for n in range(400, 420):
        path = local[f"<m{n}@mss.localhost>"][2]
        base = re.sub(r",U=\d+", "", path.name)
        path.rename(archive / "cur" / base)
    for n in range(COUNT, COUNT + 10):
        (patients / "new" / f"17000000{n}.local.mss").write_bytes(message(n))
    # Server changes: answered flags and new deliveries.
    async with db.write() as session:
        folder = (
            await session.scalars(
                select(Folder).where(Folder.mailbox_id == mailbox_id, Folder.name == "Patients")
            )
        ).one()
        await store_flags(
            session, mailbox_id, folder.id, list(range(901, 911)), "add", ["\\Answered"]
        )
        for n in range(COUNT + 10, COUNT + 15):
            await append(session, mailbox_id, "Patients", await store_message(session, message(n)))
        await deliver(session, mailbox_id, message(5000))  # INBOX is outside the channel's patterns

    await run_mbsync(mbsync, config)

    remote = await server_state(db, mailbox_id, "Patients")
    local_after = local_state(patients)
    expected_ids = (
        {f"<m{n}@mss.localhost>" for n in range(COUNT + 15)}
        - {f"<m{n}@mss.localhost>" for n in range(300, 330)}
        - {f"<m{n}@mss.localhost>" for n in range(400, 420)}
    )
    assert set(remote) == expected_ids
    assert set(local_after) == expected_ids
    for message_id in sorted(expected_ids):
        n = int(message_id[2:].split("@")[0])
        want = set()
        if n % 10 == 0 and n < COUNT:
            want.add("\\Seen")
        if n < 200 and n % 2 == 0:
            want |= {"\\Seen", "\\Flagged"}
        if 900 <= n < 910:
            want.add("\\Answered")
        assert remote[message_id][0] == want, (message_id, remote[message_id][0])
        assert local_after[message_id][0] == want, (message_id, local_after[message_id][0])
        assert _strip_tuid(remote[message_id][1]) == message(n), message_id
        assert _strip_tuid(local_after[message_id][1]).replace(b"\r\n", b"\n") == message(
            n
        ).replace(b"\r\n", b"\n"), message_id
    archived = await server_state(db, mailbox_id, "Archive")
    assert {k: _strip_tuid(v[1]) for k, v in archived.items()} == {
        f"<m{n}@mss.localhost>": message(n) for n in range(400, 420)
    }
    assert not os.path.exists(tmp_path / "mail" / "INBOX" / "cur") or not any(
        (tmp_path / "mail" / "INBOX" / "cur").iterdir()
    )
