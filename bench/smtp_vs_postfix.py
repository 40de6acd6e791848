"""The hub's SMTP gateway against a real Postfix, both started here and measured in the same run.

    .venv/bin/python bench/smtp_vs_postfix.py [--messages 2000] [--connect-messages 400]
        [--sessions 20] [--rounds 2] [--engine sqlite|postgresql] [--smtp-processes N]
        [--job-process] [--tls starttls|implicit] [--dovecot-scheme SCHEME] [--keep]

Postfix and Dovecot are Debian's, installed beforehand (nothing is installed here):

    DEBIAN_FRONTEND=noninteractive apt-get install -y postfix dovecot-core

The anchor is a private Postfix 3.7 instance (``postfix -c DIR``: its own
main.cf, master.cf, queue and data directories in this run's temporary
folder, one smtpd on a free 127.0.0.1 port) set up as a submission server:
the hub's server certificate from its development PKI and the hub's TLS
floor and TLS 1.2 suites, AUTH only after TLS, SASL through a private
Dovecot auth service (``dovecot -c CONF``, a passwd-file holding the same
argon2id hash as the hub's mailbox, auth cache on; ``--dovecot-scheme``
for another), the sender bound to its login and the recipient checked
against a table, the queue file fsynced before 250 (Postfix always does)
and the discard transport, so nothing leaves. The hub is the real one (``mss.serve.Hub``: SMTP
listeners only,
job workers in its process or with ``--job-process`` in their own,
``--smtp-processes N`` as ``[listeners] smtp_processes``), on SQLite or on
PostgreSQL (127.0.0.1:5432, $MSS_TEST_POSTGRES).

A load client in its own process sends the same S/MIME-signed messages of
about 23.5 KB (a professional to a patient, signed with the dev PKI, so the
hub must verify the signature) from ``--sessions`` sessions, in two modes:
reused connections (one login per session, many messages) and a new
connection per message (connect, TLS, AUTH, one message, QUIT: what
Thunderbird does). Runs alternate Postfix, hub, Postfix, hub for
``--rounds`` rounds, and the medians are printed: messages/s, the ratio
hub / Postfix (of the medians), server CPU per 1000 messages (every process of the server:
Postfix's master and its children with Dovecot's; the hub's processes and,
on PostgreSQL, the backends of its database), peak memory (sum of the PSS of
those processes, PostgreSQL's left out) and the load average. The client
does the measuring, from /proc, so the servers pay for none of it. Every
message that got 250 is counted; for the hub, the messages stored in the
patient's mailbox must equal them after each run.

Dovecot 2.3 verifies the password against the hash at every login: its
auth cache keeps lookups (and passwd-file is in memory anyway), and a cache
hit still runs the scheme (passdb-cache.c), so each login costs one argon2id
there, where the hub's verified-credential cache costs an HMAC on a repeat.

If Postfix or Dovecot is missing, the hub runs against a bare aiosmtpd sink
(the baseline of bench/smtp_throughput.py) and the output says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENDER = "jean.dupont@mss.localhost"
PATIENT = "180017512345678@patient.mss.localhost"
PASSWORD = "bench password 2026"
PG_ADMIN = os.environ.get("MSS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
CLOCK = os.sysconf("SC_CLK_TCK")
POSTFIX_DAEMONS = Path("/usr/lib/postfix/sbin")
MODES = {"reused": "reused connections", "connect": "a new connection per message"}


# -- the messages ------------------------------------------------------------------------


def make_messages(pki_dir: Path, count: int, path: Path) -> int:
    """``count`` distinct signed messages of about 23.5 KB (smtp_throughput's, 330 lines), pickled
    to ``path``."""
    from smtp_throughput import make_messages as signed_messages

    out = signed_messages(pki_dir, count, lines=330)
    path.write_bytes(pickle.dumps(out))
    return sum(map(len, out)) // len(out)


# -- measuring a server from outside: /proc --------------------------------------------


@dataclass(frozen=True)
class Watched:
    """The processes of one server: the trees under ``roots``, less ``excluded``, and PostgreSQL
    backends.

    A root's own children-CPU fields are counted unless it is in ``own_cpu_only`` (the
    bench process, which also reaps the load clients).
    """

    roots: tuple[int, ...]
    names: tuple[str, ...]  # each root's, for the CPU breakdown
    own_cpu_only: tuple[int, ...] = ()
    excluded: tuple[int, ...] = ()
    pg_database: str | None = None


def _stat(pid: int) -> tuple[int, list[str]] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), fields  # ppid, the fields after the command name


def process_tree(watched: Watched) -> list[int]:
    """Every live process under the roots (the roots included), the excluded ones and their trees
    left out."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                children.setdefault(found[0], []).append(int(entry))
    out, todo = [], [pid for pid in watched.roots if _stat(pid) is not None]
    while todo:
        pid = todo.pop()
        if pid in watched.excluded:
            continue
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_seconds(pids: list[int], own_only: tuple[int, ...] = ()) -> dict[int, float]:
    """User + system CPU of each process, with its reaped children's unless in ``own_only``."""
    out = {}
    for pid in pids:
        found = _stat(pid)
        if found is None:
            continue
        fields = found[1]
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if pid not in own_only:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children that exited
        out[pid] = ticks / CLOCK
    return out


def pss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


async def pg_backends(conn: asyncpg.Connection, database: str) -> list[int]:
    rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    return [row["pid"] for row in rows]


class Meter:
    """CPU of a server's processes between ``start`` and ``stop``; the peak of their PSS, sampled
    meanwhile."""

    def __init__(self, watched: Watched) -> None:
        self.watched = watched
        self.peak = 0
        self._done = threading.Event()
        self._pg_before: dict[int, float] = {}
        self._pg_last: dict[int, float] = {}

    def _by_root(self) -> dict[str, float]:
        w = self.watched
        return {
            name: sum(
                cpu_seconds(
                    process_tree(dataclasses.replace(w, roots=(root,))), w.own_cpu_only
                ).values()
            )
            for root, name in zip(w.roots, w.names, strict=True)
        }

    async def start(self) -> None:
        w = self.watched
        self._before = self._by_root()
        if w.pg_database is not None:
            self._pg = await asyncpg.connect(PG_ADMIN)
            self._pg_before = cpu_seconds(await pg_backends(self._pg, w.pg_database))
            self._pg_follower = asyncio.create_task(self._follow_backends(w.pg_database))
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    async def _follow_backends(self, database: str) -> None:
        """Each backend's last CPU reading, taken often: the hub's pool closes the connections it
        opened past its size when they are given back, and their backends' CPU leaves with them."""
        while True:
            self._pg_last.update(cpu_seconds(await pg_backends(self._pg, database)))
            await asyncio.sleep(0.1)

    def _sample(self) -> None:
        while not self._done.wait(0.5):
            self.peak = max(self.peak, pss_bytes(process_tree(self.watched)))

    async def stop(self) -> dict[str, float]:
        """The server's CPU seconds by part (each root's tree, PostgreSQL's backends)."""
        w = self.watched
        after = self._by_root()
        if w.pg_database is not None:
            self._pg_follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pg_follower
            self._pg_last.update(cpu_seconds(await pg_backends(self._pg, w.pg_database)))
            await self._pg.close()
        self._done.set()
        self._sampler.join()
        self.peak = max(self.peak, pss_bytes(process_tree(w)))
        # A process that ended during the run is in its parent's children-CPU fields by now.
        spent = {name: cpu - self._before.get(name, 0.0) for name, cpu in after.items()}
        if w.pg_database is not None:  # a backend new since the start started from 0
            spent["PostgreSQL"] = sum(
                cpu - self._pg_before.get(pid, 0.0) for pid, cpu in self._pg_last.items()
            )
        return spent


# -- the load client (in its own process) ------------------------------------------------


@dataclass
class Load:
    """What one run asks of the client."""

    port: int
    mode: str  # "reused" or "connect"
    implicit_tls: bool
    ca_file: str
    messages_file: str
    count: int
    sessions: int
    watched: Watched


@dataclass
class LoadResult:
    accepted: int = 0
    failures: list[str] = field(default_factory=list)
    busy_retries: int = 0  # connections refused with 421 and tried again
    seconds: float = 0.0
    server_cpu: float = 0.0
    cpu_parts: dict[str, float] = field(default_factory=dict)
    peak_pss: int = 0
    client_cpu: float = 0.0
    tls: str = ""
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)


def client_process(load: Load, pipe: Any) -> None:
    pipe.send(asyncio.run(drive(load)))
    pipe.close()


async def drive(load: Load) -> LoadResult:
    """Send ``load.count`` messages over ``load.sessions`` sessions, measuring the server
    meanwhile."""
    messages = pickle.loads(Path(load.messages_file).read_bytes())
    messages = [messages[n % len(messages)] for n in range(load.count)]
    context = ssl.create_default_context(cafile=load.ca_file)
    result = LoadResult()

    async def session() -> aiosmtplib.SMTP:
        while True:
            smtp = aiosmtplib.SMTP(
                hostname="localhost",
                port=load.port,
                use_tls=load.implicit_tls,
                start_tls=not load.implicit_tls,
                tls_context=context,
                timeout=120,
            )
            try:
                await smtp.connect()
                await smtp.login(SENDER, PASSWORD)
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code != 421:
                    raise
                result.busy_retries += 1  # the server's connection limit: wait and connect again
                smtp.close()
                await asyncio.sleep(0.05)
                continue
            if not result.tls:
                ssl_object = smtp.transport.get_extra_info("ssl_object") if smtp.transport else None
                result.tls = (
                    f"{ssl_object.version()} {ssl_object.cipher()[0]}" if ssl_object else "none"
                )
            return smtp

    async def send(smtp: aiosmtplib.SMTP, raw: bytes) -> None:
        try:
            errors, _ = await smtp.sendmail(SENDER, [PATIENT], raw)
        except aiosmtplib.SMTPException as exc:
            result.failures.append(str(exc))
            return
        if errors:
            result.failures.append(str(errors))
        else:
            result.accepted += 1

    async def one(share: list[bytes]) -> None:
        try:
            if load.mode == "reused":
                smtp = await session()
                for raw in share:
                    await send(smtp, raw)
                await smtp.quit()
            else:
                for raw in share:
                    smtp = await session()
                    await send(smtp, raw)
                    await smtp.quit()
        except (aiosmtplib.SMTPException, OSError) as exc:
            result.failures.append(f"session ended: {exc!r}")

    watched = load.watched
    meter = Meter(dataclasses.replace(watched, excluded=(*watched.excluded, os.getpid())))
    await meter.start()
    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(messages[i :: load.sessions]) for i in range(load.sessions)))
    result.seconds = time.perf_counter() - began
    result.client_cpu = time.process_time() - cpu
    result.cpu_parts = await meter.stop()
    result.server_cpu = sum(result.cpu_parts.values())
    result.peak_pss = meter.peak
    result.loadavg = os.getloadavg()
    return result


async def run_client(load: Load) -> LoadResult:
    """The load client in a fresh process (spawned: nothing of this one's loop or sockets)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(target=client_process, args=(load, theirs), name="smtp-load-client")
    process.start()
    theirs.close()
    try:
        result = await asyncio.to_thread(ours.recv)
    except BaseException as exc:  # it died, or this run is interrupted: no client left behind
        process.terminate()
        process.join()
        if isinstance(exc, EOFError):
            raise SystemExit(f"the load client died (exit code {process.exitcode})") from None
        raise
    await asyncio.to_thread(process.join)
    return result


# -- the anchor: a private Postfix with a private Dovecot auth service ------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postfix_available() -> str | None:
    """Why Postfix and Dovecot cannot run here, or None when they can."""
    missing = [
        name for name in ("postfix", "postconf", "dovecot", "doveadm") if shutil.which(name) is None
    ]
    if missing:
        return f"{', '.join(missing)} not found (apt-get install postfix dovecot-core)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root here (its daemons drop to the postfix user)"
    return None


MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{listen} inet n - n - - smtpd{wrapper}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PrivatePostfix:
    """Postfix and Dovecot in ``base``: started by ``start``, stopped (and killed if need be) by
    ``stop``."""

    def __init__(
        self,
        base: Path,
        cert: Path,
        key: Path,
        password_hash: str,
        *,
        implicit_tls: bool,
        scheme: str = "same",
    ) -> None:
        self.base = base
        self.config = base / "postfix"
        self.queue = base / "postfix-queue"
        self.dovecot_conf = base / "dovecot" / "dovecot.conf"
        self.dovecot_run = base / "dovecot" / "run"
        self.port = free_port()
        self.cert, self.key, self.password_hash = cert, key, password_hash
        self.implicit_tls = implicit_tls
        self.scheme = scheme
        self.version = subprocess.run(
            ["postconf", "-dh", "mail_version"], capture_output=True, text=True, check=False
        ).stdout.strip()

    def _write_config(self) -> None:
        from mss.crypto.tls import _TLS12_CIPHERS

        for folder in (
            self.config,
            self.queue,
            self.base / "postfix-data",
            self.dovecot_run,
            self.base / "dovecot" / "state",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base / "postfix-data", "postfix", "postfix")
        tls_files = self.base / "postfix-tls"
        tls_files.mkdir(mode=0o700, exist_ok=True)
        chain = tls_files / "server.pem"  # key then certificates: smtpd_tls_chain_files
        chain.write_bytes(self.key.read_bytes() + self.cert.read_bytes())
        chain.chmod(0o600)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.base / "postfix-data",
            "command_directory": "/usr/sbin",
            "daemon_directory": POSTFIX_DAEMONS,
            "shlib_directory": "/usr/lib/postfix",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.bench.localhost",
            "mydestination": "",
            "mynetworks": "127.0.0.1/32",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "maillog_file": self.base / "postfix.log",
            "maillog_file_prefixes": self.base,
            # The hub's TLS: its certificate, TLS 1.2 at least, its TLS 1.2 suites (TLS 1.3:
            # OpenSSL's).
            "smtpd_tls_chain_files": chain,
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_auth_only": "yes",
            "smtpd_tls_protocols": ">=TLSv1.2",
            "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
            "smtpd_tls_ciphers": "high",
            "smtpd_tls_mandatory_ciphers": "high",
            "tls_high_cipherlist": _TLS12_CIPHERS,
            "tls_preempt_cipherlist": "yes",
            # SASL through the private Dovecot; the sender must be the login, the recipient known.
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": "private/auth",
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_sender_login_maps": f"inline:{{ {SENDER}={SENDER} }}",
            "smtpd_sender_restrictions": "reject_sender_login_mismatch",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "virtual_mailbox_domains": PATIENT.split("@")[1],
            "virtual_mailbox_maps": f"inline:{{ {PATIENT}=ok }}",
            # Nothing leaves: every transport is discard.
            "default_transport": "discard",
            "local_transport": "discard",
            "relay_transport": "discard",
            "virtual_transport": "discard",
        }
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        wrapper = " -o smtpd_tls_wrappermode=yes" if self.implicit_tls else ""
        (self.config / "master.cf").write_text(
            MASTER_CF.format(listen=f"127.0.0.1:{self.port}", wrapper=wrapper)
        )
        passwd = self.base / "dovecot" / "passwd"
        passwd.write_text(f"{SENDER}:{self.dovecot_hash()}\n")
        self.dovecot_conf.write_text(f"""\
base_dir = {self.dovecot_run}
state_dir = {self.base / "dovecot" / "state"}
log_path = {self.base / "dovecot.log"}
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 0
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid=postfix gid=postfix home=/nonexistent
}}
service auth {{
  unix_listener {self.queue / "private" / "auth"} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
""")

    def dovecot_hash(self) -> str:
        """The hub's own argon2id hash (same parameters, same cost), or one ``doveadm pw`` makes
        in ``scheme``."""
        if self.scheme == "same":
            return "{ARGON2ID}" + self.password_hash
        done = subprocess.run(
            ["doveadm", "pw", "-s", self.scheme, "-p", PASSWORD],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return done.stdout.strip()

    def _run(self, *command: str) -> None:
        """Run a command; its output to a file (a daemon keeps a pipe open, and the caller would
        wait on it)."""
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, check=False
            )
            if done.returncode:
                output.seek(0)
                raise RuntimeError(f"{' '.join(command)} failed: {output.read()}")

    def start(self) -> None:
        self._write_config()
        self._run(
            "postfix", "-c", str(self.config), "start"
        )  # creates the queue's folders, then Dovecot's socket
        self._run("dovecot", "-c", str(self.dovecot_conf))
        deadline = time.monotonic() + 30
        while (
            len(self.roots()) < 2
            or not (self.queue / "private" / "auth").exists()
            or not self._listening()
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Postfix or Dovecot did not come up; see {self.base}/*.log")
            time.sleep(0.1)

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _pid(self, path: Path) -> int | None:
        # IndexError: the daemon has created its pid file but not written it yet
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(path.read_text().split()[0])
        return None

    names = ("Postfix", "Dovecot")

    def roots(self) -> tuple[int, ...]:
        pids = (
            self._pid(self.queue / "pid" / "master.pid"),
            self._pid(self.dovecot_run / "master.pid"),
        )
        return tuple(pid for pid in pids if pid)

    def stop(self) -> None:
        """Stop both; whatever still runs of their process trees afterwards is killed."""
        left = process_tree(Watched(self.roots(), self.names))
        with contextlib.suppress(Exception):
            self._run("postfix", "-c", str(self.config), "stop")
        with contextlib.suppress(Exception):
            self._run("doveadm", "-c", str(self.dovecot_conf), "stop")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_stat(pid) for pid in left):
            time.sleep(0.1)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                if _stat(pid) is not None:
                    os.kill(pid, signal.SIGKILL)


# -- the hub --------------------------------------------------------------------------------


class BenchHub:
    """The hub's SMTP listeners (``mss.serve.Hub``) on a fresh database, one sender and one
    patient."""

    def __init__(self, base: Path, pki_dir: Path, args: argparse.Namespace) -> None:
        from mss.config import Settings

        self.args = args
        self.pg_name: str | None = None
        settings = self.settings = Settings()
        settings.data_dir = str(base / "hub")
        settings.log_level = "WARNING"  # the child processes: no line per SMTP command
        for name in ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "https"):
            setattr(settings.ports, name, 0)
        listeners = settings.listeners
        listeners.smtp_relay = listeners.imap = listeners.imaps = listeners.https = False
        listeners.submission, listeners.submission_tls = not args.implicit_tls, args.implicit_tls
        listeners.smtp_processes = args.smtp_processes
        listeners.job_process = args.job_process
        settings.data_path.mkdir(parents=True)
        shutil.copytree(pki_dir, settings.pki_dir)

    async def start(self) -> None:
        from mss.db import Database
        from mss.migrate import upgrade_async
        from mss.serve import Hub

        if self.args.engine == "postgresql":
            self.pg_name = f"mss_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'CREATE DATABASE "{self.pg_name}"')
            await admin.close()
            self.settings.database_url = (
                PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
                + "/"
                + self.pg_name
            )
        else:
            self.settings.database_url = (
                f"sqlite+aiosqlite:///{self.settings.data_path / 'hub.sqlite3'}"
            )
        await upgrade_async(self.settings.effective_database_url)
        self.hub = Hub(self.settings, Database(self.settings.effective_database_url))
        await self.populate()
        await self.hub.start()
        ports = self.hub.services.smtp_ports
        self.port = ports["submission_tls" if self.args.implicit_tls else "submission"]

    async def populate(self) -> None:
        from mss.db import utcnow
        from mss.directory.models import Mailbox, MailboxKind, Patient, PatientState, Professional
        from mss.directory.store import hash_password

        self.password_hash = hash_password(PASSWORD)
        async with self.hub.db.write() as session:
            doctor = Professional(id_nat="810000000001", family_name="Dupont")
            patient = Patient(
                ins="180017512345678",
                family_name="Patient",
                state=PatientState.ACTIVE,
                activated_at=utcnow(),
            )
            session.add_all([doctor, patient])
            await session.flush()
            session.add_all(
                [
                    Mailbox(
                        address=SENDER,
                        kind=MailboxKind.PER,
                        professional_id=doctor.id,
                        password_hash=self.password_hash,
                    ),
                    Mailbox(address=PATIENT, kind=MailboxKind.PAT, patient_id=patient.id),
                ]
            )

    async def stored(self) -> int:
        """Messages in the patient's folders."""
        from sqlalchemy import func, select

        from mss.directory.models import Mailbox
        from mss.mailbox.models import Folder, FolderEntry

        async with self.hub.db.read() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(FolderEntry)
                    .join(Folder, Folder.id == FolderEntry.folder_id)
                    .join(Mailbox, Mailbox.id == Folder.mailbox_id)
                    .where(Mailbox.address == PATIENT)
                )
                or 0
            )

    async def jobs_waiting(self) -> int:
        """Follow-up jobs (the patient's notifications) queued and not yet done: work after the
        measured run."""
        from sqlalchemy import func, select

        from mss.db import utcnow
        from mss.jobs import Job

        async with self.hub.db.read() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.state.in_(("pending", "running")), Job.run_after <= utcnow())
                )
                or 0
            )

    def watched(self, others: tuple[int, ...] = ()) -> Watched:
        """This process and its children, less ``others`` (the anchor, when it is a child)."""
        me = os.getpid()
        return Watched(
            (me,), ("hub",), own_cpu_only=(me,), excluded=others, pg_database=self.pg_name
        )

    async def stop(self) -> None:
        with contextlib.suppress(AttributeError):
            await self.hub.stop()
        if self.pg_name:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            await admin.close()


# -- the baseline when Postfix is absent: a bare aiosmtpd sink with STARTTLS/implicit TLS and AUTH
# --------


class Sink:
    """A bare aiosmtpd server in a child process, with the hub's TLS and an AUTH that accepts the
    password."""

    def __init__(self, cert: Path, key: Path, implicit_tls: bool) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(
            target=_sink_main,
            args=(self.port, str(cert), str(key), implicit_tls),
            name="smtp-sink",
            daemon=True,
        )

    def start(self) -> None:
        self.process.start()
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the aiosmtpd sink did not start")
            time.sleep(0.1)

    names = ("sink",)

    def roots(self) -> tuple[int, ...]:
        return (self.process.pid,) if self.process.pid else ()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


def _sink_main(port: int, cert: str, key: str, implicit_tls: bool) -> None:
    import warnings

    from aiosmtpd.smtp import SMTP, AuthResult

    warnings.filterwarnings("ignore", "Session.login_data is deprecated")

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        return AuthResult(success=getattr(auth_data, "password", b"") == PASSWORD.encode())

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(
                Handler(),
                hostname="sink",
                authenticator=authenticate,
                auth_require_tls=True,
                tls_context=None if implicit_tls else context,
            ),
            "127.0.0.1",
            port,
            ssl=context if implicit_tls else None,
        )
        await server.serve_forever()

    asyncio.run(serve())


# -- the run -----------------------------------------------------------------------------


@dataclass
class Runs:
    results: dict[tuple[str, str], list[LoadResult]] = field(default_factory=dict)

    def add(self, server: str, mode: str, result: LoadResult) -> None:
        self.results.setdefault((server, mode), []).append(result)

    def median(self, server: str, mode: str, what: str) -> float:
        return statistics.median(
            getattr(r, what) if what != "rate" else r.accepted / r.seconds
            for r in self.results[(server, mode)]
        )

    def cpu_per_1000(self, server: str, mode: str) -> float:
        return statistics.median(
            1000 * r.server_cpu / max(r.accepted, 1) for r in self.results[(server, mode)]
        )

    def parts_per_1000(self, server: str, mode: str) -> str:
        """The CPU per 1000 messages of each part of the server, when it has more than one."""
        results = self.results[(server, mode)]
        names = list(results[0].cpu_parts)
        if len(names) < 2:
            return ""
        return (
            " ("
            + ", ".join(
                f"{name} {statistics.median(1000 * r.cpu_parts[name] / max(r.accepted, 1) for r in results):.2f}"  # noqa: E501
                for name in names
            )
            + ")"
        )


async def one_run(name: str, load: Load, hub: BenchHub | None) -> LoadResult:
    before = await hub.stored() if hub is not None else 0
    result = await run_client(load)
    waiting = 0
    if hub is not None:
        waiting = await hub.jobs_waiting()
        stored = await hub.stored() - before
        if stored != result.accepted:
            raise SystemExit(
                f"the hub answered 250 to {result.accepted} messages but stored {stored}"
            )
    if result.failures:
        raise SystemExit(
            f"{name}: {len(result.failures)} messages not accepted, first: {result.failures[0]}"
        )
    print(
        f"  {name:<8} {MODES[load.mode]:<30} {result.accepted:6d} msgs in {result.seconds:6.1f} s "
        f"{result.accepted / result.seconds:8.1f} msg/s  server CPU {result.server_cpu:6.1f} s  "
        f"peak PSS {result.peak_pss / 2**20:6.0f} MiB  load {result.loadavg[0]:.2f}"
        + (
            f"  ({result.busy_retries} connections refused 421, tried again)"
            if result.busy_retries
            else ""
        )
        + (f"  ({waiting} follow-up jobs still queued)" if waiting else ""),
        flush=True,
    )
    return result


async def bench(args: argparse.Namespace, base: Path) -> None:
    from mss.crypto import pki

    pki_dir = base / "pki"
    layout = await asyncio.to_thread(
        pki.init_pki, pki_dir, ["localhost", "mss.localhost"], operator_domain="mss.localhost"
    )
    messages_file = base / "messages.pickle"
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:  # signing stays out of the hub's process and memory
        size = pool.apply(
            make_messages, (pki_dir, max(args.messages, args.connect_messages), messages_file)
        )
    hub = BenchHub(base, pki_dir, args)
    why_not = postfix_available()
    anchor: PrivatePostfix | Sink
    try:
        await hub.start()
        cert, key = hub.settings.server_cert_file, hub.settings.server_key_file
        if why_not is None:
            anchor = PrivatePostfix(
                base,
                cert,
                key,
                hub.password_hash,
                implicit_tls=args.implicit_tls,
                scheme=args.dovecot_scheme,
            )
            anchor_name = "postfix"
        else:
            anchor = Sink(cert, key, args.implicit_tls)
            anchor_name = "sink"
        try:
            anchor.start()
            await run_rounds(args, hub, anchor, anchor_name, why_not, layout, messages_file, size)
        finally:
            anchor.stop()
    finally:
        await hub.stop()


async def run_rounds(
    args: argparse.Namespace,
    hub: BenchHub,
    anchor: PrivatePostfix | Sink,
    anchor_name: str,
    why_not: str | None,
    layout: Any,
    messages_file: Path,
    size: int,
) -> None:
    tls = "implicit TLS" if args.implicit_tls else "STARTTLS"
    from mss.config import Listeners

    count = Listeners(smtp_processes=args.smtp_processes).smtp_process_count
    if args.smtp_processes == "auto" and args.engine == "sqlite":
        count = 1  # Settings.smtp_process_count: "auto" is one process on SQLite
    processes = f"{count}" + (" (auto)" if args.smtp_processes == "auto" else "")
    hub_desc = f"hub on {args.engine}, {processes} SMTP process(es), job workers " + (
        "in a process of their own" if args.job_process else "in the hub's process"
    )
    if why_not is None:
        assert isinstance(anchor, PrivatePostfix)
        scheme = "the hub's argon2id hash" if anchor.scheme == "same" else anchor.scheme
        print(
            f"Postfix {anchor.version} (private instance, SASL via Dovecot with {scheme}, "
            f"discard transport) "
            f"against the {hub_desc}"
        )
    else:
        print(
            f"Postfix cannot run here ({why_not}): the anchor is a bare aiosmtpd sink with "
            f"the same TLS and AUTH"
        )
        print(f"bare aiosmtpd sink against the {hub_desc}")
    print(
        f"{size}-byte S/MIME-signed messages over {args.sessions} sessions, {tls} + AUTH PLAIN, "
        f"{args.rounds} round(s) of {anchor_name}, hub; {os.cpu_count()} CPUs"
    )

    def load(port: int, mode: str, watched: Watched) -> Load:
        return Load(
            port=port,
            mode=mode,
            implicit_tls=args.implicit_tls,
            ca_file=str(layout.root_cert),
            messages_file=str(messages_file),
            count=args.messages if mode == "reused" else args.connect_messages,
            sessions=args.sessions,
            watched=watched,
        )

    anchor_watched = Watched(anchor.roots(), anchor.names)
    hub_watched = hub.watched(anchor.roots())
    for mode in MODES:  # warm both up: first logins, caches, Dovecot's auth cache
        warm = dataclasses.replace(
            load(anchor.port, mode, anchor_watched), count=min(args.sessions, 4)
        )
        await run_client(warm)
        await run_client(
            dataclasses.replace(load(hub.port, mode, hub_watched), count=min(args.sessions, 4))
        )
    runs = Runs()
    for number in range(1, args.rounds + 1):
        print(f"round {number}")
        for mode in MODES:
            runs.add(
                anchor_name,
                mode,
                await one_run(anchor_name, load(anchor.port, mode, anchor_watched), None),
            )
            runs.add("hub", mode, await one_run("hub", load(hub.port, mode, hub_watched), hub))
    print(
        f"medians over {args.rounds} round(s); server CPU = every process of the server"
        + (
            ", PostgreSQL's backends of the hub's database included"
            if args.engine == "postgresql"
            else ""
        )
    )
    for mode, title in MODES.items():
        anchor_rate, hub_rate = (
            runs.median(anchor_name, mode, "rate"),
            runs.median("hub", mode, "rate"),
        )
        print(f"{title}:")
        for server in (anchor_name, "hub"):
            rate = runs.median(server, mode, "rate")
            print(
                f"  {server:<8} {rate:8.1f} msg/s  server CPU "
                f"{runs.cpu_per_1000(server, mode):6.2f} s "
                f"per 1000 msgs{runs.parts_per_1000(server, mode)}  peak PSS "
                f"{runs.median(server, mode, 'peak_pss') / 2**20:6.0f} MiB  "
                f"client CPU "
                f"{1000 * runs.median(server, mode, 'client_cpu') / max(runs.median(server, mode, 'accepted'), 1):.2f} "  # noqa: E501
                f"s/1000"
            )
        anchor_cpu = runs.cpu_per_1000(anchor_name, mode)
        cpu_ratio = (
            f"{runs.cpu_per_1000('hub', mode) / anchor_cpu:.2f}"
            if anchor_cpu
            else "n/a (too short to measure)"
        )
        print(
            f"  ratio hub/{anchor_name} {hub_rate / anchor_rate:.3f}   CPU ratio "
            f"hub/{anchor_name} {cpu_ratio}"
        )
    first = next(iter(runs.results.values()))[0]
    print(
        f"TLS negotiated: {first.tls}; load average at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        " (the machine may be shared)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages", type=int, default=2000, help="messages per run, reused connections"
    )
    parser.add_argument(
        "--connect-messages",
        type=int,
        default=None,
        help="messages per run, a new connection each (default: --messages / 5)",
    )
    parser.add_argument("--sessions", type=int, default=20, help="parallel SMTP sessions")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of Postfix then hub, for each mode"
    )
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--smtp-processes",
        type=lambda value: value if value == "auto" else int(value),
        default=1,
        help='the hub\'s SMTP processes, or "auto" (one per core, as mss serve by default)',
    )
    parser.add_argument(
        "--job-process", action="store_true", help="the hub's job workers in their own process"
    )
    parser.add_argument("--tls", choices=("starttls", "implicit"), default="starttls")
    parser.add_argument(
        "--dovecot-scheme",
        default="same",
        help="Dovecot's password scheme: 'same' (the hub's argon2id hash, the default) or one of "
        "'doveadm pw -l' (SHA512-CRYPT, ...)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (configurations, logs)"
    )
    args = parser.parse_args()
    args.implicit_tls = args.tls == "implicit"
    if args.connect_messages is None:
        args.connect_messages = max(args.messages // 5, args.sessions)
    base = Path(tempfile.mkdtemp(prefix="mss-bench-postfix-"))
    base.chmod(0o755)  # Postfix's daemons run as postfix and reach their queue under it
    signal.signal(
        signal.SIGTERM, signal.default_int_handler
    )  # as Ctrl-C: the servers are stopped on the way out
    try:
        asyncio.run(bench(args, base))
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    main()
