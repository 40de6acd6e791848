"""IMAP load benchmark: the hub's IMAP server against pymap (dict backend) in the same run.

K clients run a fixed, seeded mix (SELECT, FETCH flags/headers/bodies,
STORE, SEARCH, APPEND, IDLE) for T seconds against each server (both in
their own process, both over STARTTLS, same client code), and the script
prints operations/s for both and the ratio. Then, on the hub only: SELECT,
``UID FETCH 1:* (FLAGS)`` and a header SEARCH on a 100,000-message folder,
and the memory of 2,000 idle connections (server RSS before and after).

    .venv/bin/python bench/imap_load.py            # defaults finish in under 3 minutes
    .venv/bin/python bench/imap_load.py --clients 16 --seconds 30 --big-folder 100000
    .venv/bin/python bench/imap_load.py --memory-only --idle-connections 2000   # idle memory alone

Both servers use the hub's development PKI (``mss pki init``) and the hub's
TLS contexts (``mss.crypto.tls``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USER = "jean.dupont@mss.localhost"
PASSWORD = "bench password"
MIX = [
    ("select", 10),
    ("fetch_flags", 20),
    ("fetch_headers", 20),
    ("fetch_body", 15),
    ("store", 15),
    ("search", 10),
    ("append", 5),
    ("idle", 5),
]


def sample_message(n: int) -> bytes:
    body = ("Compte rendu de consultation, ligne de texte pour le benchmark.\r\n" * 30).encode()
    return (
        f"From: Alice Martin <alice.martin@mss.localhost>\r\nTo: {USER}\r\n"
        f"Subject: Message {n}\r\nMessage-ID: <bench-{n}@mss.localhost>\r\n"
        f"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + body


# --- a small IMAP client, the same for both servers ---


class Client:
    """Just enough IMAP to drive the load: tagged commands, literals, STARTTLS, IDLE."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.counter = reader, writer, 0

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext, *, login: bool = True) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        client = cls(reader, writer)
        await reader.readline()
        await client.command(b"STARTTLS")
        await writer.start_tls(context, server_hostname="localhost")
        if login:
            await client.command(f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        return client

    async def _response_line(self) -> bytes:
        line = await self.reader.readuntil(b"\n")
        while line.endswith(b"}\r\n") and b"{" in line:
            size = int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))
            line += await self.reader.readexactly(size)
            line += await self.reader.readuntil(b"\n")
        return line

    async def command(self, text: bytes, literal: bytes | None = None) -> list[bytes]:
        self.counter += 1
        tag = b"b%d" % self.counter
        if literal is None:
            self.writer.write(tag + b" " + text + b"\r\n")
        else:
            self.writer.write(tag + b" " + text + b" {%d}\r\n" % len(literal))
            while not (await self._response_line()).startswith(b"+"):
                pass
            self.writer.write(literal + b"\r\n")
        lines = []
        while True:
            line = await self._response_line()
            lines.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text!r} failed: {line!r}")
                return lines

    async def idle_round(self) -> None:
        self.counter += 1
        tag = b"b%d" % self.counter
        self.writer.write(tag + b" IDLE\r\n")
        while not (await self._response_line()).startswith(b"+"):
            pass
        self.writer.write(b"DONE\r\n")
        while not (await self._response_line()).startswith(tag + b" "):
            pass

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def run_mix(client: Client, rng: random.Random, deadline: float, count: int) -> int:
    """Run the seeded mix until the deadline; returns the number of operations done."""
    ops = 0
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    await client.command(b"SELECT INBOX")
    while time.monotonic() < deadline:
        op = rng.choices(names, weights)[0]
        uid = rng.randint(1, count)
        if op == "select":
            await client.command(b"SELECT INBOX")
        elif op == "fetch_flags":
            await client.command(b"UID FETCH 1:* (FLAGS)")
        elif op == "fetch_headers":
            await client.command(b"UID FETCH %d:%d (BODY.PEEK[HEADER])" % (uid, uid + 9))
        elif op == "fetch_body":
            await client.command(b"UID FETCH %d (BODY.PEEK[] FLAGS)" % uid)
        elif op == "store":
            await client.command(
                b"UID STORE %d %sFLAGS (\\Flagged)" % (uid, rng.choice([b"+", b"-"]))
            )
        elif op == "search":
            await client.command(b'UID SEARCH SUBJECT "Message %d"' % uid)
        elif op == "append":
            await client.command(
                b"APPEND INBOX (\\Seen)", sample_message(rng.randint(10**6, 10**7))
            )
        elif op == "idle":
            await client.idle_round()
        ops += 1
    return ops


async def load(
    port: int, context: ssl.SSLContext, clients: int, seconds: float, count: int, seed: int
) -> float:
    """Operations per second of K clients for T seconds."""
    connections = [await Client.connect(port, context) for _ in range(clients)]
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    done = await asyncio.gather(
        *(run_mix(c, random.Random(seed + i), deadline, count) for i, c in enumerate(connections))
    )
    elapsed = time.monotonic() - started
    for c in connections:
        await c.close()
    return sum(done) / elapsed


async def fill(port: int, context: ssl.SSLContext, count: int) -> None:
    client = await Client.connect(port, context)
    for n in range(1, count + 1):
        await client.command(b"APPEND INBOX", sample_message(n))
    await client.close()


# --- servers ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(directory: Path) -> Path:
    """A development PKI in ``directory/pki`` (what ``mss pki init`` makes); returns the data
    directory."""
    from mss.crypto.pki import init_pki

    init_pki(directory / "pki", ["localhost"], operator_domain="mss.localhost")
    return directory


def client_context(data_dir: Path) -> ssl.SSLContext:
    from mss.config import Settings
    from mss.crypto import tls
    from mss.crypto.trust import TrustStore

    settings = Settings()
    settings.data_dir = str(data_dir)
    return tls.client_context(settings, trust=TrustStore.from_pki(data_dir / "pki"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def prepare_hub_database(url: str, big_folder: int) -> None:
    """Schema, one mailbox, and the big folder filled with bulk inserts (no IMAP round trips)."""
    import argon2
    from sqlalchemy import insert, update

    from mss.db import Database, utcnow
    from mss.directory.models import Mailbox, MailboxKind
    from mss.mailbox import counters
    from mss.mailbox.folders import create_folder
    from mss.mailbox.models import Folder, FolderEntry, StoredMessage
    from mss.mailbox.store import ensure_folders
    from mss.mailbox.structure import describe
    from mss.migrate import upgrade_async

    await upgrade_async(url)
    db = Database(url)
    async with db.write() as session:
        mailbox = Mailbox(
            address=USER,
            kind=MailboxKind.PER,
            password_hash=argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD),
        )
        session.add(mailbox)
        await session.flush()
        await ensure_folders(session, mailbox.id)
        big = await create_folder(session, mailbox.id, "Big")
        mailbox_id, big_id = mailbox.id, big.id
    template = describe(sample_message(0))
    batch = 5000
    for start in range(1, big_folder + 1, batch):
        stop = min(big_folder + 1, start + batch)
        async with db.write() as session:
            rows = []
            for n in range(start, stop):
                raw = sample_message(n)
                envelope = list(template.envelope)
                envelope[1] = f"Message {n}"
                rows.append(
                    {
                        "raw": raw,
                        "size": len(raw),
                        "internal_date": utcnow(),
                        "sent_date": dt.date(2026, 3, 2),
                        "message_id_header": f"<bench-{n}@mss.localhost>",
                        "subject": f"Message {n}",
                        "from_address": template.from_address,
                        "headers_text": template.headers_text.replace(
                            "Message 0", f"Message {n}"
                        ).replace("bench-0@", f"bench-{n}@"),
                        "envelope": envelope,
                        "bodystructure": template.structure_column(),
                        "signature_status": "none",
                    }
                )
            ids = (
                (await session.execute(insert(StoredMessage).returning(StoredMessage.id), rows))
                .scalars()
                .all()
            )
            await session.execute(
                insert(FolderEntry),
                [
                    {
                        "folder_id": big_id,
                        "uid": start + i,
                        "message_id": mid,
                        "flags": "\\Seen" if i % 3 else "",
                        "seen": bool(i % 3),
                        "modseq": 2,
                    }
                    for i, mid in enumerate(sorted(ids))
                ],
            )
    async with db.write() as session:
        await session.execute(
            update(Folder)
            .where(Folder.id == big_id)
            .values(uidnext=big_folder + 1, highest_modseq=2)
        )
        await counters.rebuild(session, big_id)  # entries written directly: count them once
    del mailbox_id
    await db.dispose()


async def serve_hub(url: str, data_dir: str) -> None:
    """--serve mode: the hub's IMAP server alone in this process; prints its STARTTLS port."""
    from mss.config import Settings
    from mss.crypto.tls import server_context
    from mss.db import Database
    from mss.mailbox.imap import start_imap_servers

    settings = Settings()
    settings.database_url = url
    settings.data_dir = data_dir
    settings.ports.imap = 0
    settings.listeners.imaps = False
    settings.limits.max_connections_per_ip = 100_000
    settings.limits.imap_connections_per_user = 100_000
    servers = await start_imap_servers(
        settings, Database(url, pool_size=5), server_context(settings)
    )
    print(servers[0].sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def start_hub(url: str, data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def start_pymap(cert: Path, key: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    pymap = Path(sys.executable).parent / "pymap"
    process = subprocess.Popen(
        [
            str(pymap),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "dict",
            "--demo-user",
            USER,
            "--demo-password",
            PASSWORD,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("pymap did not start")


async def timed(client: Client, command: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    lines = await client.command(command)
    return time.perf_counter() - started, len(lines)


async def big_folder_figures(port: int, context: ssl.SSLContext, size: int) -> None:
    client = await Client.connect(port, context)
    select, _ = await timed(client, b"SELECT Big")
    flags, lines = await timed(client, b"UID FETCH 1:* (FLAGS)")
    search, _ = await timed(client, b'UID SEARCH HEADER Subject "Message %d"' % (size // 2 + 7))
    search_flags, _ = await timed(client, b"UID SEARCH UNSEEN")
    await client.close()
    print(
        f"  {size:,}-message folder: SELECT {select * 1000:.0f} ms, UID FETCH 1:* (FLAGS) "
        f"{flags * 1000:.0f} ms ({lines - 1:,} lines), header SEARCH {search * 1000:.0f} ms, "
        f"SEARCH UNSEEN {search_flags * 1000:.0f} ms"
    )


async def idle_memory(pid: int, port: int, context: ssl.SSLContext, connections: int) -> float:
    before = rss_kib(pid)
    clients = []
    for i in range(0, connections, 50):
        clients += await asyncio.gather(
            *(Client.connect(port, context) for _ in range(min(50, connections - i)))
        )
    for c in clients:
        await c.command(b"SELECT INBOX")
        c.writer.write(b"i IDLE\r\n")
    for c in clients:
        await c.reader.readuntil(b"\n")
    await asyncio.sleep(1)
    after = rss_kib(pid)
    for c in clients:
        c.writer.close()
    return (after - before) / connections


async def report_idle_memory(
    hub: subprocess.Popen[str], port: int, context: ssl.SSLContext, connections: int
) -> None:
    per = await idle_memory(hub.pid, port, context, connections)
    print(
        f"  {connections:,} idle connections (TLS, logged in, IDLE): {per:.1f} KiB each, "
        f"{per * connections / 1024:.1f} MiB in all; server RSS {rss_kib(hub.pid) / 1024:.0f} MiB",
        flush=True,
    )


async def main(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * args.idle_connections + 200)), hard)
    )
    work = Path(tempfile.mkdtemp(prefix="mss-imap-bench-"))
    data_dir = make_pki(work)
    cert, key = data_dir / "pki" / "server.pem", data_dir / "pki" / "server.key"
    context = client_context(data_dir)
    url = args.database_url or f"sqlite+aiosqlite:///{work / 'bench.sqlite3'}"
    big_folder = 0 if args.memory_only else args.big_folder
    print(f"preparing the hub database ({big_folder:,}-message folder) ...", flush=True)
    started = time.monotonic()
    await prepare_hub_database(url, big_folder)
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    hub, hub_port = start_hub(url, data_dir)
    if args.memory_only:
        try:
            await fill(hub_port, context, args.messages)
            await report_idle_memory(hub, hub_port, context, args.idle_connections)
        finally:
            hub.terminate()
            hub.wait()
        return
    pymap, pymap_port = start_pymap(cert, key)
    try:
        results = {}
        for name, port in (("pymap (dict)", pymap_port), ("mss hub", hub_port)):
            await fill(port, context, args.messages)
            results[name] = await load(
                port, context, args.clients, args.seconds, args.messages, args.seed
            )
            print(
                f"{name:>14}: {results[name]:8.1f} operations/s  ({args.clients} clients, "
                f"{args.seconds:.0f} s, "
                f"seed {args.seed}, {'SQLite' if url.startswith('sqlite') else 'PostgreSQL'})",
                flush=True,
            )
        print(
            f"{'ratio':>14}: {results['mss hub'] / results['pymap (dict)']:8.2f} x pymap "
            f"(target >= 2)"
        )
        print("hub only:")
        await big_folder_figures(hub_port, context, args.big_folder)
        if args.idle_connections:
            await report_idle_memory(hub, hub_port, context, args.idle_connections)
    finally:
        for process in (hub, pymap):
            process.terminate()
            process.wait()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (K)")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each load run (T)")
    parser.add_argument(
        "--messages", type=int, default=200, help="messages in INBOX before the load"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--big-folder", type=int, default=100_000, help="size of the big folder")
    parser.add_argument("--idle-connections", type=int, default=2000)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the memory of idle connections (no pymap, no load, no big folder)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(serve_hub(*sys.argv[2:4]))
    else:
        asyncio.run(main(parse_args()))
