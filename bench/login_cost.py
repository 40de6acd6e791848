"""Login cost: the hub's server CPU per login on SMTP and IMAP, against a NOOP on the same
connection.

    .venv/bin/python bench/login_cost.py [--logins 200] [--engine sqlite|postgresql] [--rounds 2]

``mss serve`` (SMTP submission on implicit TLS, IMAPS; no workers) runs in
a process of its own on a fresh database holding ``--logins`` professional
mailboxes. A client opens one TLS connection per login, one after another,
and the server's CPU is read from its own counters (``/proc/<pid>/stat``,
user + system, every thread) around each series:

- baseline: TLS handshake, greeting, NOOP, QUIT/LOGOUT (full handshake, then resumed);
- (a) first login: each mailbox logs in for the first time (argon2id);
- (b) repeat login: the same mailboxes again (the verified-credential cache);
- (c) repeat login on a resumed TLS session.

The login's cost is the series' CPU per connection minus the baseline's
with the same handshake. Series are interleaved (baseline, login, baseline,
login) over ``--rounds`` rounds and the medians printed, with the load
average. Targets (Logins issue): a repeat login <= 2 ms of server CPU beyond
the NOOP, a first login <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub_process import start_hub

from mss.config import Settings
from mss.crypto import pki
from mss.db import Database
from mss.directory.models import Mailbox, MailboxKind, Professional
from mss.directory.store import hash_password
from mss.mailbox.store import create_default_folders
from mss.migrate import upgrade_async

PASSWORD = "bench password 2026"
PG_ADMIN = os.environ.get("MSS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
TICKS = os.sysconf("SC_CLK_TCK")
PROTOCOLS = {
    # greeting marker, login exchange, NOOP exchange, goodbye
    "smtp": (
        b"220 ",
        lambda user: [
            (b"EHLO bench\r\n", b"250 "),
            (b"AUTH PLAIN " + _plain(user) + b"\r\n", b"235 "),
        ],
        [(b"EHLO bench\r\n", b"250 "), (b"NOOP\r\n", b"250 ")],
        (b"QUIT\r\n", b"221 "),
    ),
    "imap": (
        b"* OK",
        lambda user: [
            (b"a LOGIN " + user.encode() + b' "' + PASSWORD.encode() + b'"\r\n', b"a OK")
        ],
        [(b"a NOOP\r\n", b"a OK")],
        (b"z LOGOUT\r\n", b"z OK"),
    ),
}


def _plain(user: str) -> bytes:
    import base64

    return base64.b64encode(f"\0{user}\0{PASSWORD}".encode())


def address(n: int) -> str:
    return f"bench{n:05d}@mss.localhost"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def server_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def populate(settings: Settings, count: int) -> None:
    await upgrade_async(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    hashed = hash_password(
        PASSWORD
    )  # one hash for every mailbox: the cache is keyed by address too
    ids: list[int] = []
    async with db.write() as session:
        for n in range(count):
            person = Professional(id_nat=f"8{n + 10000000000:011d}", family_name=f"Bench{n}")
            session.add(person)
            await session.flush()
            mailbox = Mailbox(
                address=address(n),
                kind=MailboxKind.PER,
                professional_id=person.id,
                password_hash=hashed,
            )
            session.add(mailbox)
            await session.flush()
            ids.append(mailbox.id)
        await create_default_folders(
            session, ids
        )  # as the directory gives every mailbox its folders
    await db.dispose()


def _read_until(conn: ssl.SSLSocket, marker: bytes) -> None:
    seen = b""
    while marker not in seen:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed while waiting for {marker!r}: {seen[-300:]!r}")
        seen += chunk


def one_connection(
    port: int,
    context: ssl.SSLContext,
    session: ssl.SSLSession | None,
    protocol: str,
    user: str | None,
) -> ssl.SSLSession | None:
    greeting, login, noop, goodbye = PROTOCOLS[protocol]
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    with context.wrap_socket(raw, server_hostname="localhost", session=session) as conn:
        _read_until(conn, greeting)
        for line, marker in login(user) if user is not None else noop:
            conn.sendall(line)
            _read_until(conn, marker)
        conn.sendall(goodbye[0])
        _read_until(conn, goodbye[1])
        return conn.session


def series(
    pid: int,
    port: int,
    context: ssl.SSLContext,
    protocol: str,
    users: list[str | None],
    resumed: bool,
) -> float:
    """Server CPU milliseconds per connection over one series."""
    session = one_connection(port, context, None, protocol, None) if resumed else None
    before = server_cpu(pid)
    for user in users:
        one_connection(port, context, session if resumed else None, protocol, user)
    return 1000 * (server_cpu(pid) - before) / len(users)


def measure(
    settings: Settings, pid: int, count: int, rounds: int
) -> dict[str, dict[str, list[float]]]:
    context = ssl.create_default_context(cafile=str(settings.pki_dir / "root-ca.pem"))
    ports = {"smtp": settings.ports.submission_tls, "imap": settings.ports.imaps}
    results: dict[str, dict[str, list[float]]] = {}
    for index, (protocol, port) in enumerate(ports.items()):
        got = results.setdefault(protocol, {})
        first = index * rounds * count
        noops: list[str | None] = [None] * count
        for r in range(rounds):
            # Each round and protocol has its own mailboxes for the first logins (a cold cache).
            users: list[str | None] = [
                address(first + n) for n in range(r * count, (r + 1) * count)
            ]
            got.setdefault("noop, full handshake", []).append(
                series(pid, port, context, protocol, noops, False)
            )
            got.setdefault("(a) first login", []).append(
                series(pid, port, context, protocol, users, False)
            )
            got.setdefault("noop, full handshake", []).append(
                series(pid, port, context, protocol, noops, False)
            )
            got.setdefault("(b) repeat login", []).append(
                series(pid, port, context, protocol, users, False)
            )
            got.setdefault("noop, resumed", []).append(
                series(pid, port, context, protocol, noops, True)
            )
            got.setdefault("(c) repeat, resumed TLS", []).append(
                series(pid, port, context, protocol, users, True)
            )
            got.setdefault("noop, resumed", []).append(
                series(pid, port, context, protocol, noops, True)
            )
    return results


def report(results: dict[str, dict[str, list[float]]]) -> None:
    baseline_of = {
        "(a) first login": "noop, full handshake",
        "(b) repeat login": "noop, full handshake",
        "(c) repeat, resumed TLS": "noop, resumed",
    }
    targets = {"(a) first login": 50.0, "(b) repeat login": 2.0, "(c) repeat, resumed TLS": 2.0}
    for protocol, got in results.items():
        print(f"  {protocol.upper()}")
        medians = {name: statistics.median(values) for name, values in got.items()}
        for name, value in medians.items():
            line = f"    {name:<26} {value:7.2f} ms server CPU per connection"
            if name in baseline_of:
                extra = value - medians[baseline_of[name]]
                verdict = "meets" if extra <= targets[name] else "misses"
                base = medians[baseline_of[name]]
                ratio = f"{value / base:.2f}" if base > 0 else "n/a (NOOP below the clock tick)"
                line += (
                    f"   login = {extra:6.2f} ms beyond the NOOP (target <= {targets[name]:g} ms: "
                    f"{verdict}); ratio to the NOOP {ratio}"
                )
            print(line)


async def prepare(engine: str, base: Path, total: int) -> tuple[Settings, str | None]:
    settings = Settings()
    settings.data_dir = str(base / "var")
    pg_name = None
    if engine == "postgresql":
        pg_name = f"mss_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{pg_name}"')
        await admin.close()
        settings.database_url = (
            PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            + "/"
            + pg_name
        )
    pki.init_pki(settings.pki_dir, ["localhost", "mss.localhost"], operator_domain="mss.localhost")
    for name in ("submission", "smtp_relay", "imap", "https"):
        setattr(settings.listeners, name, False)
    settings.listeners.workers = False
    settings.listeners.smtp_processes = 1  # the CPU read is this one process's (/proc/<pid>)
    settings.ports.submission_tls, settings.ports.imaps = _free_port(), _free_port()
    settings.limits.max_connections_per_ip = 1000
    await populate(settings, total)
    return settings, pg_name


async def drop(pg_name: str | None) -> None:
    if pg_name is not None:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--logins", type=int, default=200, help="connections per series")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mss-login-bench-"))
    settings, pg_name = asyncio.run(prepare(args.engine, base, 2 * args.logins * args.rounds))
    server = None
    try:
        server, pid = start_hub(settings)
        started = time.perf_counter()
        results = measure(settings, pid, args.logins, args.rounds)
        print(
            f"login cost, {args.engine}, {args.logins} connections per series, {args.rounds} "
            f"rounds "
            f"(medians), {time.perf_counter() - started:.0f} s; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; server RSS "
            f"{server_rss_mb(pid):.0f} MB"
        )
        report(results)
    finally:
        if server is not None:
            server.terminate()
            server.join(30)
        asyncio.run(drop(pg_name))
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
