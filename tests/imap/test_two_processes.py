"""Two hub processes on one database: a change made through one reaches a client of the other.

On PostgreSQL, LISTEN/NOTIFY wakes an IDLE client of the other process at once.
SQLite is a one-process store: there the other process shows the change at the next NOOP.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mss.config import Settings
from mss.db import Database
from mss.mailbox.store import deliver
from tests.imap.conftest import RunningImap, Wire
from tests.imap.test_transcript_basic import MESSAGE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def other_process(database_url: str, tls_settings: Settings) -> AsyncIterator[int]:
    """The implicit-TLS port of a second hub process serving the same database, with the same
    PKI."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.imap.serve_imap",
        database_url,
        str(tls_settings.data_dir),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    yield int(line)
    process.terminate()
    await process.wait()


async def _connect(port: int, client_ssl: ssl.SSLContext) -> Wire:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ssl, server_hostname="localhost"
    )
    wire = Wire(reader, writer)
    await wire.read_line()
    await wire.login()
    await wire.command("s SELECT INBOX")
    return wire


async def test_delivery_and_changes_cross_processes(
    db: Database, mailbox_id: int, imap: RunningImap, other_process: int, client_ssl: ssl.SSLContext
) -> None:
    remote = await _connect(other_process, client_ssl)
    here = await _connect(imap.tls_port, client_ssl)
    if db.is_sqlite:
        async with db.write() as session:
            await deliver(session, mailbox_id, MESSAGE)
        await remote.check(
            "r1 NOOP", "* 1 EXISTS\n* 1 RECENT\nr1 OK NOOP completed"
        )  # first to see it
        await here.check(
            "h1 STORE 1 +FLAGS.SILENT (\\Flagged)", "* 1 EXISTS\nh1 OK STORE completed"
        )
        await remote.check(
            "r2 NOOP", "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\nr2 OK NOOP completed"
        )
    else:
        remote.send("r1 IDLE")
        assert await remote.read_line() == "+ idling\r\n"
        async with db.write() as session:  # a delivery in this process...
            await deliver(session, mailbox_id, MESSAGE)
        assert await remote.read_line(timeout=5) == "* 1 EXISTS\r\n"  # ...wakes the other one
        assert await remote.read_line(timeout=5) == "* 1 RECENT\r\n"  # which sees it first
        await here.check(
            "h1 STORE 1 +FLAGS.SILENT (\\Flagged)", "* 1 EXISTS\nh1 OK STORE completed"
        )
        assert (
            await remote.read_line(timeout=5) == "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n"
        )
        remote.send("DONE")
        assert await remote.read_line() == "r1 OK IDLE terminated\r\n"
        here.send("h2 IDLE")
        assert await here.read_line() == "+ idling\r\n"
        await remote.check("r2 STORE 1 -FLAGS.SILENT (\\Flagged)", "r2 OK STORE completed")
        assert await here.read_line(timeout=5) == "* 1 FETCH (UID 1 FLAGS ())\r\n"
        here.send("DONE")
        assert await here.read_line() == "h2 OK IDLE terminated\r\n"
    await remote.close()
    await here.close()
