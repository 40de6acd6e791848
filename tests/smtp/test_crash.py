"""Crash test: a client process floods the gateway while the test SIGKILLs and restarts it.

Afterwards every message that got a 250 is stored exactly once: the reply
is only sent after the commit, and a commit is never half done.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mss.config import Settings
from mss.db import Database
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from tests.fixtures_pki import DevPki
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PASSWORD, Hub, populate

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mss.smtp_gateway", "--config", str(config), "--no-workers"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("ab"),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(b"ready"), f"gateway did not start: {line!r}, see {log}"
    return process


def flood_while_killing(
    config: Path, server_log: Path, port: int, cafile: Path, acked: Path
) -> int:
    """Flood the gateway while killing it four times, then stop the flood; the number of kills."""
    gateway = start_gateway(config, server_log)
    flood = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/smtp/flood_client.py"),
            str(port),
            str(cafile),
            DOCTOR,
            PASSWORD,
            OTHER_DOCTOR,
            "120",
            "4",
            str(acked),
        ]
    )
    rng = random.Random(os.getpid())
    kills = 0
    try:
        while kills < 4:
            time.sleep(rng.uniform(1.0, 2.0))
            os.kill(gateway.pid, signal.SIGKILL)
            gateway.wait()
            kills += 1
            gateway = start_gateway(config, server_log)
        settle = time.monotonic() + 20  # let the last gateway acknowledge a few more
        while time.monotonic() < settle and _count(acked) < 10 + kills:
            time.sleep(0.2)
        assert flood.poll() is None, "the flood client died"
        flood.terminate()  # a message in flight is simply not counted as acknowledged
        flood.wait(timeout=30)
    finally:
        gateway.kill()
        gateway.wait()
        flood.kill()
    return kills


def _count(acked: Path) -> int:
    return acked.read_text().count("@flood>") if acked.exists() else 0


@pytest.mark.slow
async def test_sigkill_loses_nothing_acknowledged(
    settings: Settings, db: Database, dev_pki: DevPki, tmp_path: Path
) -> None:
    dev_pki.install(settings)
    port = free_port()
    settings.ports.submission_tls = port
    await populate(db, Hub(settings, db, dev_pki, {}, {}, None))  # type: ignore[arg-type]
    config = tmp_path / "mss.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\ndatabase_url = "{settings.database_url}"\n'
        f"[listeners]\nsubmission = false\nsmtp_relay = false\n"
        f"[ports]\nsubmission_tls = {port}\n",
        encoding="utf-8",
    )
    acked = tmp_path / "acked.txt"
    kills = await asyncio.to_thread(
        flood_while_killing, config, tmp_path / "gateway.log", port, dev_pki.root_cert, acked
    )
    # A line cut by the flood's termination is not a whole acknowledgement.
    acknowledged = [m for m in acked.read_text().split() if m.endswith("@flood>")]
    assert kills == 4 and len(acknowledged) >= 10, (kills, len(acknowledged))
    async with db.read() as session:
        rows = (
            await session.execute(
                select(StoredMessage.message_id_header, func.count())
                .join(FolderEntry, FolderEntry.message_id == StoredMessage.id)
                .join(Folder, Folder.id == FolderEntry.folder_id)
                .where(Folder.name == "INBOX")
                .group_by(StoredMessage.message_id_header)
            )
        ).all()
    counts = dict(rows)
    assert [m for m in acknowledged if counts.get(m) != 1] == []
    assert len(acknowledged) == len(set(acknowledged))
