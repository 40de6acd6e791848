"""IMAP against the real anchor: the hub and a private Dovecot (Debian's dovecot-imapd) under the
same load.

    .venv/bin/python bench/imap_vs_dovecot.py            # the issue's run: 20 clients, 50 users,
30 s
    .venv/bin/python bench/imap_vs_dovecot.py --clients 20 --seconds 30 --rounds 2 --big-folder
100000

Both servers run in this sitting, on loopback, over implicit TLS with the same
certificate (the hub's development PKI, ``mss.crypto.pki.init_pki``), with the
same users and the same password hash (argon2id with the hub's parameters;
Dovecot verifies it as ``{ARGON2ID}``), each user's INBOX holding the same
``--messages`` messages (``imap_load.sample_message``), and each side's login
cache on (Dovecot's ``auth_cache``, the hub's verified-credential cache). Dovecot
still runs the hash at every login (about 19 ms of its auth process's CPU with
this argon2id, measured: its cache does not remember a verified password), where
the hub checks a repeat login with one HMAC; ``--dovecot-hash ssha512`` gives
Dovecot a cheap hash instead, for its best figure.

- Dovecot: its own config, base_dir and maildirs in the temp folder, started
  with ``dovecot -c CONF`` and stopped with ``doveadm -c CONF stop`` (then any
  process left of the instance is killed), in high-performance mode
  (``service imap-login { service_count = 0; process_min_avail = 2 }``).
- The hub: ``mss serve`` (``mss.serve.Hub``) in a process of its own with only
  IMAPS on, SQLite in the temp folder; messages filed through the store's bulk
  insert (``insert_messages`` + ``append_many``).

The load is the issue's stress mix, from ``--clients`` clients that log in,
work and log out over and over (as Dovecot's imaptest does): LOGIN, SELECT,
FETCH 1:* (FLAGS), FETCH a body, STORE +FLAGS with keywords ($Label1...),
SEARCH UNSEEN or SEARCH FROM, STORE \\Deleted and EXPUNGE, APPEND, LOGOUT.
Every tagged reply counts as one command; NO, BAD and lost connections are
errors. The server's CPU is read from /proc for every process of it (Dovecot:
its master and all descendants; the hub: its process and any children),
reaped children included; memory is the PSS sum (``smaps_rollup``), the peak
of one-second samples under load. Rounds interleave hub, Dovecot, hub,
Dovecot...; the medians are printed with the ratio hub/Dovecot and the load
average. Then the ``--big-folder`` timings, warm, on both: SELECT,
UID SEARCH UNSEEN, UID FETCH 1:* (FLAGS), median of five runs each.

The load generator is one Python process: its own CPU is printed, since when it
nears one core the commands/s of the faster server are capped by it (the CPU per
command is not).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hub_process import start_hub
from imap_load import Client, client_context, free_port, make_pki, sample_message, timed

PASSWORD = "bench password 2026"
TICKS = os.sysconf("SC_CLK_TCK")
BIG = "Archive"  # the big folder: a standard folder, so the store's bulk filing reaches it
BIG_RUNS = 5
DOVECOT = (
    shutil.which("dovecot", path=os.environ.get("PATH", "") + ":/usr/sbin") or "/usr/sbin/dovecot"
)
DOVEADM = (
    shutil.which("doveadm", path=os.environ.get("PATH", "") + ":/usr/bin") or "/usr/bin/doveadm"
)
KEYWORDS = [b"$Label1", b"$Label2", b"$Label3", b"$Label4", b"$Label5", b"\\Seen", b"\\Flagged"]


def user(n: int) -> str:
    return f"bench{n:03d}@mss.localhost"


def big_message() -> bytes:
    return (
        b"From: Alice Martin <alice.martin@mss.localhost>\r\nTo: bench000@mss.localhost\r\n"
        b"Subject: Archive\r\nMessage-ID: <archive@mss.localhost>\r\n"
        b"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n\r\nArchived.\r\n"
    )


def big_seen(index: int) -> bool:
    return index % 3 != 0  # two in three seen, on both servers


# --- processes: CPU and memory of a server and everything it started ---


def _stat(pid: int) -> tuple[int, int]:
    """(parent pid, CPU ticks of the process and of its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = _stat(int(entry))[0]
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds of a server by process name: every process of its tree, with the children it
    reaped."""
    by_name: dict[str, float] = {}
    for pid in process_tree(root):
        try:
            ticks = _stat(pid)[1]
            name = Path(f"/proc/{pid}/cmdline").read_text().split("\0")[0].rsplit("/", 1)[-1]
        except (OSError, IndexError, ValueError):
            # gone between the listing and the read: its time is in its parent's reaped ticks
            continue
        name = f"{name} (with its exited children)" if pid == root else name
        by_name[name] = by_name.get(name, 0.0) + ticks / TICKS
    return by_name


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}


def tree_pss_mb(root: int) -> float:
    total = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


# --- the messages both servers hold ---


def inbox_messages(count: int) -> list[bytes]:
    return [sample_message(n) for n in range(1, count + 1)]


def maildir_name(n: int, size: int, seen: bool) -> str:
    return f"1772442000.M{n}P1.bench,S={size},W={size}:2,{'S' if seen else ''}"


def fill_maildir(folder: Path, messages: list[bytes] | None, big: int = 0) -> None:
    """A maildir folder holding ``messages`` (unseen), or ``big`` copies of the big-folder
    message."""
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    cur = folder / "cur"
    if messages is not None:
        for n, raw in enumerate(messages, 1):
            (cur / maildir_name(n, len(raw), False)).write_bytes(raw)
    raw = big_message()
    for n in range(big):
        (cur / maildir_name(n + 1, len(raw), big_seen(n))).write_bytes(raw)


async def prepare_hub(
    settings: Any, users: int, password_hash: str, messages: list[bytes], big: int
) -> None:
    """Schema, the users (one argon2id hash for all), their INBOX and the big folder, by bulk
    filing."""
    from mss.db import Database
    from mss.directory.models import Mailbox, MailboxKind, Professional
    from mss.mailbox.store import (
        INBOX,
        Append,
        append_many,
        create_default_folders,
        insert_messages,
        message_values,
    )
    from mss.mailbox.structure import describe
    from mss.migrate import upgrade_async

    await upgrade_async(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    ids: list[int] = []
    async with db.write() as session:
        for n in range(users):
            person = Professional(id_nat=f"8{n + 10000000000:011d}", family_name=f"Bench{n}")
            session.add(person)
            await session.flush()
            mailbox = Mailbox(
                address=user(n),
                kind=MailboxKind.PER,
                professional_id=person.id,
                password_hash=password_hash,
            )
            session.add(mailbox)
            await session.flush()
            ids.append(mailbox.id)
        await create_default_folders(session, ids)
    facts = [describe(raw) for raw in messages]
    for mailbox_id in ids:
        async with db.write() as session:
            stored = await insert_messages(
                session, [message_values(raw, f) for raw, f in zip(messages, facts, strict=True)]
            )
            await append_many(session, [Append(mailbox_id, INBOX, m) for m in stored])
    raw = big_message()
    fact = describe(raw)
    for start in range(0, big, 5000):
        async with db.write() as session:
            stop = min(big, start + 5000)
            stored = await insert_messages(
                session, [message_values(raw, fact) for _ in range(start, stop)]
            )
            await append_many(
                session,
                [
                    Append(ids[0], BIG, m, ("\\Seen",) if big_seen(start + i) else ())
                    for i, m in enumerate(stored)
                ],
            )
    await db.dispose()


# --- the servers ---


def hub_settings(work: Path) -> Any:
    from mss.config import Settings

    settings = Settings()
    settings.data_dir = str(work / "hub")
    shutil.copytree(work / "pki", settings.pki_dir)
    for name in ("submission", "submission_tls", "smtp_relay", "imap", "https", "workers"):
        setattr(settings.listeners, name, False)
    settings.ports.imaps = free_port()
    settings.limits.max_connections_per_ip = 10_000
    settings.limits.imap_connections_per_user = 10_000
    return settings


@dataclass
class Dovecot:
    """A private Dovecot instance: config, sockets, users and maildirs under ``root``."""

    root: Path
    port: int
    pid: int = 0
    mail_user: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    def write(
        self, pki: Path, users: int, password_hash: str, messages: list[bytes], big: int
    ) -> None:
        import grp
        import pwd

        (self.root / "state").mkdir(parents=True)
        as_root = os.getuid() == 0
        # Dovecot runs no mail process as root: a system user owns the mail (here, Debian's "mail").
        account = pwd.getpwnam("mail") if as_root else pwd.getpwuid(os.getuid())
        internal = "dovecot" if as_root else account.pw_name
        login = "dovenull" if as_root else account.pw_name
        gid = grp.getgrnam("mail").gr_gid if as_root else account.pw_gid
        self.mail_user = account.pw_name
        mail = self.root / "mail"
        (self.root / "users").write_text(
            "".join(f"{user(n)}:{password_hash}\n" for n in range(users))
        )
        for n in range(users):
            home = mail / user(n) / "Maildir"
            fill_maildir(home, messages)
            (home / f".{BIG}").mkdir()
            fill_maildir(home / f".{BIG}", None, big if n == 0 else 0)
        if as_root:
            for path in [mail, *mail.rglob("*")]:
                os.chown(path, account.pw_uid, gid)
        dh = Path("/usr/share/dovecot/dh.pem")
        self.conf.write_text(f"""\
# A private Dovecot for bench/imap_vs_dovecot.py: nothing outside {self.root}.
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = mss-bench-{self.port}
protocols = imap
listen = 127.0.0.1
log_path = {self.root}/dovecot.log
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {account.pw_uid}
first_valid_gid = {gid}
ssl = required
ssl_cert = <{pki}/server.pem
ssl_key = <{pki}/server.key
{f"ssl_dh = <{dh}" if dh.exists() else ""}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain
auth_cache_size = 10M
auth_cache_ttl = 300 s
auth_cache_negative_ttl = 0
mail_location = maildir:~/Maildir
mail_max_userip_connections = 10000
passdb {{
  driver = passwd-file
  args = {self.root}/users
}}
userdb {{
  driver = static
  args = uid={account.pw_uid} gid={gid} home={mail}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox {BIG} {{
    special_use = \\Archive
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 2
  vsz_limit = 1G
}}
service imap {{
  process_limit = 10000
}}
default_client_limit = 10000
""")
        # Dovecot's auth and mail users reach their files; the keys stay in the 0700 pki folder.
        self.root.parent.chmod(0o711)
        self.root.chmod(0o755)

    def start(self) -> None:
        """The master in the foreground, a child of this process; its pid is the root of the
        instance."""
        errors = (self.root / "stderr.log").open("wb")
        # In this process group: whatever stops the benchmark's group stops Dovecot too.
        self.process = process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=errors,
            stderr=errors,
        )
        self.pid = process.pid
        try:
            wait_for_port(self.port, "dovecot")
        except SystemExit:
            log = self.root / "dovecot.log"
            raise SystemExit(
                f"dovecot did not start: {(self.root / 'stderr.log').read_text()[-500:]}"
                f"{log.read_text()[-1500:] if log.exists() else ''}"
            ) from None

    def stop(self) -> None:
        if self.process is None:
            return
        tree = process_tree(self.pid)
        subprocess.run(
            [DOVEADM, "-c", str(self.conf), "stop"], capture_output=True, check=False, timeout=30
        )
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for pid in tree:  # whatever the master left behind, if it is still of this instance
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_text()
                if f"mss-bench-{self.port}/" in cmdline or str(self.conf) in cmdline:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.process.wait()
        self.process = None


def wait_for_port(port: int, name: str) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} does not listen on 127.0.0.1:{port}")


# --- the load: the stress mix, reconnecting clients ---


@dataclass
class Tally:
    commands: int = 0
    no: int = 0
    bad: int = 0
    lost: int = 0
    samples: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.no + self.bad + self.lost


class MixClient(Client):
    """``imap_load.Client`` over implicit TLS, tracking EXISTS and counting replies instead of
    raising."""

    exists = 0

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> MixClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost", limit=1 << 24
        )
        client = cls(reader, writer)
        await reader.readline()
        return client

    async def run(self, tally: Tally, text: bytes, literal: bytes | None = None) -> list[bytes]:
        try:
            lines = await self.command(text, literal)
        except RuntimeError as exc:  # imap_load.Client: "<command> failed: <tagged reply>"
            if " BAD " in str(exc).rsplit("failed: ", 1)[-1]:
                tally.bad += 1
            else:
                tally.no += 1
            if len(tally.samples) < 5:
                tally.samples.append(str(exc)[:200])
            lines = []
        tally.commands += 1
        for line in lines:
            parts = line.split(b" ", 3)
            if len(parts) >= 3 and parts[0] == b"*" and parts[1].isdigit():
                if parts[2].startswith(b"EXISTS"):
                    self.exists = int(parts[1])
                elif parts[2].startswith(b"EXPUNGE"):
                    self.exists -= 1
        return lines


async def one_session(
    port: int,
    context: ssl.SSLContext,
    rng: random.Random,
    users: int,
    tally: Tally,
    deadline: float,
) -> None:
    """One connection of the mix: LOGIN ... LOGOUT; each step only while time remains."""
    client = await MixClient.open(port, context)
    try:
        steps: list[Callable[[], Awaitable[Any]]] = []

        def some() -> int:
            return rng.randint(1, max(client.exists, 1))

        def step(
            text: Callable[[], bytes],
            literal: bytes | None = None,
            *,
            needs_mail: bool = False,
            chance: float = 1.0,
        ) -> None:
            async def go() -> None:
                if rng.random() < chance and (client.exists or not needs_mail):
                    await client.run(tally, text(), literal)

            steps.append(go)

        step(lambda: f'LOGIN "{user(rng.randrange(users))}" "{PASSWORD}"'.encode())
        step(lambda: b"SELECT INBOX")
        step(lambda: b"FETCH 1:* (FLAGS)", needs_mail=True)
        step(lambda: b"FETCH %d (BODY.PEEK[] FLAGS)" % some(), needs_mail=True)
        step(
            lambda: b"STORE %d +FLAGS (%s)" % (some(), b" ".join(rng.sample(KEYWORDS, 2))),
            needs_mail=True,
        )
        step(lambda: b"SEARCH UNSEEN", chance=0.5)
        step(lambda: b'SEARCH FROM "alice"', chance=0.5)
        step(lambda: b"STORE %d +FLAGS.SILENT (\\Deleted)" % some(), needs_mail=True)
        step(lambda: b"EXPUNGE")
        step(lambda: b"APPEND INBOX", sample_message(rng.randint(10**6, 10**7)))
        step(lambda: b"LOGOUT")
        for go in steps:
            if time.monotonic() >= deadline:
                break
            await go()
    finally:
        await client.close()


async def client_loop(
    port: int, context: ssl.SSLContext, seed: int, users: int, tally: Tally, deadline: float
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(one_session(port, context, rng, users, tally, deadline), 120)
        except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            tally.lost += 1
            if len(tally.samples) < 5:
                tally.samples.append(f"lost connection: {type(exc).__name__} {exc}"[:200])


@dataclass
class Round:
    rate: float
    cpu_ms: float  # server CPU per command
    cpu_by_process: dict[str, float]  # the same, by process name
    pss_mb: float  # peak under load
    client_cpu: float  # the load generator's CPU, share of one core
    tally: Tally


async def load_round(
    port: int, root_pid: int, context: ssl.SSLContext, args: argparse.Namespace, seed: int
) -> Round:
    tally = Tally()
    peak = [tree_pss_mb(root_pid)]
    cpu_before, client_before, started = tree_cpu(root_pid), time.process_time(), time.monotonic()
    deadline = started + args.seconds

    async def sample() -> None:
        while True:
            await asyncio.sleep(1)
            peak.append(await asyncio.to_thread(tree_pss_mb, root_pid))

    sampler = asyncio.create_task(sample())
    await asyncio.gather(
        *(
            client_loop(port, context, seed + i, args.users, tally, deadline)
            for i in range(args.clients)
        )
    )
    sampler.cancel()
    elapsed = time.monotonic() - started
    cpu = cpu_spent(cpu_before, tree_cpu(root_pid))
    per = {name: 1000 * seconds / max(tally.commands, 1) for name, seconds in cpu.items()}
    return Round(
        tally.commands / elapsed,
        sum(per.values()),
        per,
        max(peak),
        (time.process_time() - client_before) / elapsed,
        tally,
    )


async def warm_logins(port: int, context: ssl.SSLContext, users: int) -> None:
    """Each user logs in once, so both login caches are warm before the measured rounds."""
    for n in range(users):
        client = await MixClient.open(port, context)
        await client.command(f'LOGIN "{user(n)}" "{PASSWORD}"'.encode())
        await client.command(b"SELECT INBOX")
        await client.command(b"LOGOUT")
        await client.close()


async def big_folder_timings(port: int, context: ssl.SSLContext) -> dict[str, list[float]]:
    commands = {
        "SELECT": f"SELECT {BIG}".encode(),
        "UID SEARCH UNSEEN": b"UID SEARCH UNSEEN",
        "UID FETCH 1:* (FLAGS)": b"UID FETCH 1:* (FLAGS)",
    }
    for _ in range(
        2
    ):  # warm: a session that opened and closed the folder (Dovecot writes its index then)
        client = await MixClient.open(port, context)
        await client.command(f'LOGIN "{user(0)}" "{PASSWORD}"'.encode())
        for text in commands.values():
            await client.command(text)
        await client.command(b"LOGOUT")
        await client.close()
    client = await MixClient.open(port, context)
    await client.command(f'LOGIN "{user(0)}" "{PASSWORD}"'.encode())
    got: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(BIG_RUNS):
        for name, text in commands.items():
            got[name].append((await timed(client, text))[0] * 1000)
    await client.command(b"LOGOUT")
    await client.close()
    return got


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def measure(
    args: argparse.Namespace, hub_port: int, hub_pid: int, dovecot: Dovecot, context: ssl.SSLContext
) -> None:
    servers = {"mss hub": (hub_port, hub_pid), "Dovecot": (dovecot.port, dovecot.pid)}
    for port, _ in servers.values():
        await warm_logins(port, context, args.users)
    print(
        f"load: {args.clients} clients, {args.users} users, {args.messages} messages each, "
        f"Dovecot's password hash {args.dovecot_hash}, "
        f"{args.seconds:g} s per run, {args.rounds} rounds interleaved (hub, Dovecot, ...); "
        f"load average {load_average()}",
        flush=True,
    )
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    for r in range(args.rounds):
        for name, (port, pid) in servers.items():
            got = await load_round(port, pid, context, args, args.seed + 1000 * r)
            rounds[name].append(got)
            print(
                f"  round {r + 1} {name:<8} {got.rate:8.1f} commands/s  {got.cpu_ms:6.2f} ms "
                f"server CPU/command"
                f"  PSS {got.pss_mb:6.1f} MB  errors {got.tally.errors} (NO {got.tally.no}, "
                f"BAD {got.tally.bad},"
                f" lost {got.tally.lost})  client CPU {100 * got.client_cpu:.0f}%",
                flush=True,
            )
            for line in got.tally.samples[:3]:
                print(f"      e.g. {line}")
    medians = {
        name: (
            statistics.median(g.rate for g in got),
            statistics.median(g.cpu_ms for g in got),
            statistics.median(g.pss_mb for g in got),
            sum(g.tally.errors for g in got),
        )
        for name, got in rounds.items()
    }
    print(f"medians ({args.rounds} rounds); load average {load_average()}")
    for name, (rate, cpu_ms, pss, errors) in medians.items():
        print(
            f"  {name:<8} {rate:8.1f} commands/s  {cpu_ms:6.2f} ms server CPU/command  PSS "
            f"{pss:6.1f} MB"
            f"  errors {errors}"
        )
        processes = {
            process: statistics.median(g.cpu_by_process.get(process, 0.0) for g in rounds[name])
            for process in rounds[name][0].cpu_by_process
        }
        print(
            "           CPU/command by process: "
            + ", ".join(
                f"{process} {ms:.2f} ms"
                for process, ms in sorted(processes.items(), key=lambda i: -i[1])
                if ms >= 0.01
            )
        )
    (hub_rate, hub_cpu, hub_pss, _), (dc_rate, dc_cpu, dc_pss, _) = (
        medians["mss hub"],
        medians["Dovecot"],
    )
    print(
        f"  ratio hub/Dovecot: commands/s {hub_rate / dc_rate:.3f} (target >= 0.5), server "
        f"CPU per command "
        f"{hub_cpu / dc_cpu if dc_cpu else float('nan'):.2f}, PSS {hub_pss / dc_pss:.2f} "
        f"(target <= 2)",
        flush=True,
    )
    if args.big_folder:
        timings = {
            name: await big_folder_timings(port, context) for name, (port, _) in servers.items()
        }
        print(
            f"{args.big_folder:,}-message folder, warm, over TLS (median of {BIG_RUNS} runs, "
            f"client wall time):"
        )
        for command in timings["mss hub"]:
            hub_ms = statistics.median(timings["mss hub"][command])
            dc_ms = statistics.median(timings["Dovecot"][command])
            print(
                f"  {command:<22} hub {hub_ms:8.1f} ms   Dovecot {dc_ms:8.1f} ms   ratio "
                f"hub/Dovecot "
                f"{hub_ms / dc_ms if dc_ms else float('nan'):.1f}"
            )


def dovecot_hash(scheme: str, argon2id: str) -> str:
    """The passwd-file hash: the hub's own argon2id one, or a cheap salted SHA-512 from ``doveadm
    pw``."""
    if scheme == "argon2id":
        return "{ARGON2ID}" + argon2id
    done = subprocess.run(
        [DOVEADM, "pw", "-s", "SSHA512", "-p", PASSWORD], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def create_database(admin_url: str) -> str:
    """A fresh PostgreSQL database for the hub (``--postgresql``): its SQLAlchemy URL."""
    import asyncpg

    name = f"mss_imap_bench_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return "postgresql+asyncpg://" + admin_url.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, url: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def main() -> None:
    from mss.directory.store import hash_password

    args = parse_args()
    if not Path(DOVECOT).exists() or not Path("/usr/lib/dovecot/imap").exists():
        raise SystemExit(
            "needs Debian's dovecot-core and dovecot-imapd (apt-get install dovecot-imapd)"
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the cleanup below runs on kill too
    work = Path(tempfile.mkdtemp(prefix="mss-dovecot-bench-"))
    hub: multiprocessing.process.BaseProcess | None = None
    settings: Any = None
    dovecot = Dovecot(work / "dovecot", free_port())
    try:
        make_pki(work)
        context = client_context(work)
        messages = inbox_messages(args.messages)
        settings = hub_settings(work)
        settings.listeners.imap_processes = args.imap_processes
        engine = "SQLite"
        if args.postgresql:
            settings.database_url = create_database(args.postgresql)
            engine = f"PostgreSQL, {args.imap_processes} IMAP processes"
        started = time.monotonic()
        password_hash = hash_password(
            PASSWORD
        )  # one argon2id hash, the hub's parameters, for both servers
        asyncio.run(prepare_hub(settings, args.users, password_hash, messages, args.big_folder))
        dovecot.write(
            work / "pki",
            args.users,
            dovecot_hash(args.dovecot_hash, password_hash),
            messages,
            args.big_folder,
        )
        version = subprocess.run(
            [DOVECOT, "--version"], capture_output=True, text=True, check=False
        ).stdout
        print(
            f"prepared {args.users} users x {args.messages} messages and a "
            f"{args.big_folder:,}-message folder "
            f"on both in {time.monotonic() - started:.0f} s (Dovecot {version.strip()}, mail "
            f"owned by "
            f"{dovecot.mail_user}; hub on {engine})",
            flush=True,
        )
        hub, hub_pid = start_hub(settings)
        dovecot.start()
        asyncio.run(measure(args, settings.ports.imaps, hub_pid, dovecot, context))
    finally:
        dovecot.stop()
        if hub is not None:
            hub.terminate()
            hub.join(30)
            if hub.is_alive():
                hub.kill()
        shutil.rmtree(work, ignore_errors=True)
        if args.postgresql and settings is not None:
            drop_database(args.postgresql, settings.database_url)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument(
        "--users", type=int, default=50, help="users the clients log in as, at random"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each load run")
    parser.add_argument("--messages", type=int, default=200, help="messages in each user's INBOX")
    parser.add_argument(
        "--big-folder", type=int, default=100_000, help="size of the big folder (0: none)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="load runs per server, interleaved")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--postgresql",
        metavar="ADMIN_URL",
        help="run the hub on a fresh PostgreSQL database made through this admin URL "
        "(postgresql://postgres@127.0.0.1:5432/postgres) instead of SQLite",
    )
    parser.add_argument(
        "--imap-processes",
        type=int,
        default=1,
        help="the hub's [listeners] imap_processes (more than one needs --postgresql)",
    )
    parser.add_argument(
        "--dovecot-hash",
        choices=["argon2id", "ssha512"],
        default="argon2id",
        help="Dovecot's password hash: the hub's argon2id one (default), or a cheap SSHA512; "
        "Dovecot runs the hash at every login, its auth cache does not spare it",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
