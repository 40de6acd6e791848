"""Patient portal load: N logged-in sessions reading their messages, against a trivial aiohttp
page in the same run.

    .venv/bin/python bench/portal_load.py                        # SQLite, 20 sessions, 15 s:
under 2 minutes
    .venv/bin/python bench/portal_load.py --engine postgresql    # a fresh database on
127.0.0.1:5432, dropped after
    .venv/bin/python bench/portal_load.py --sessions 50 --seconds 30 --messages-per-patient 10
    .venv/bin/python bench/portal_load.py --processes 2    # each server in 2 processes
    .venv/bin/python bench/portal_load.py --engine postgresql --serve hub    # mss serve only

A temporary hub data folder gets a development PKI (``mss.crypto.pki``), a
migrated database, a doctor and N active patients, each with a few
S/MIME-signed messages delivered through the gateway (``Gateway.submit``, so
they are verified and stored as in production). The real HTTPS application
(``mss.http.build_app``, TLS from ``mss.crypto.tls.server_context``) then runs
in its own process; N sessions log in for real (password, then the code read
from the development SMS outbox) and for T seconds each loads its inbox, then
one of its messages, in turn. The baseline is a trivial aiohttp handler
returning a small HTML page, in its own process over the same TLS, driven by
the same client code at the same concurrency. With ``--processes P`` each
server runs in P processes sharing its port (SO_REUSEPORT, as ``mss serve``
does with several cores). With ``--serve hub`` (or ``both``, the default) the
portal is also served by what ``mss serve`` runs (``mss.serve.Hub``, HTTPS
only) with ``[listeners] https_processes`` from ``--https-processes`` ("auto":
one per core up to 4 on PostgreSQL, one on SQLite), against the trivial page
in as many processes. The script prints requests/s and p50/p99 latency for
each, and the ratios portal / trivial.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.policy
import email.utils
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from cryptography import x509
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mss.config import Settings
from mss.crypto import pki, smime
from mss.crypto.keys import PrivateKey, load_certs, load_key
from mss.crypto.tls import client_context, server_context
from mss.crypto.trust import TrustStore
from mss.db import Database, utcnow
from mss.directory.facts import mailbox_facts
from mss.directory.identifiers import ins_key
from mss.directory.models import Mailbox, MailboxKind, OrganisationKind, PatientState
from mss.directory.store import (
    MailboxOwner,
    create_mailbox,
    create_organisation,
    create_patient,
    create_professional,
    hash_password_async,
)
from mss.http import build_app
from mss.mailbox.models import Folder, FolderEntry
from mss.migrate import upgrade_async
from mss.notify import read_outbox
from mss.serve import Hub, register_follow_ups
from mss.services import Services
from mss.smtp_gateway import Gateway

DOCTOR = "jean.dupont@mss.localhost"
DOCTOR_ID_NAT = "810003456786"
PASSWORD = "mon chat dort 3 fois"
PG_ADMIN = os.environ.get("MSS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TRIVIAL_PAGE = (
    '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Messages</title></head>'
    "<body><h1>Messages</h1><p>Bonjour.</p></body></html>"
)


def hub_settings(data_dir: Path, database_url: str) -> Settings:
    """The hub's settings for the temporary data folder (the server process builds the same)."""
    settings = Settings()
    settings.data_dir = str(data_dir)
    settings.database_url = database_url
    return settings


def tls_server_context(settings: Settings) -> ssl.SSLContext:
    """What ``mss serve`` puts on the HTTPS port (optional client certificates, for the DMP API)."""
    return server_context(
        settings, client_cert="optional", trust=TrustStore.from_settings(settings)
    )


# --- the hub's data -----------------------------------------------------------------------


@dataclass
class PatientLoad:
    """One simulated user: how they log in and the message entries of their inbox."""

    identifier: str
    phone: str
    entries: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Signer:
    """The doctor's S/MIME certificate, its chain and its key."""

    cert: x509.Certificate
    chain: list[x509.Certificate]
    key: PrivateKey


def patient_ins(n: int) -> str:
    nir = f"1800175{n:06d}"
    return f"{nir}{ins_key(nir):02d}"


def signed_message(signer: Signer, to: str, n: int) -> bytes:
    """A doctor's letter (every other one with a PDF), S/MIME-signed with the chain."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = f"Dr Jean Dupont <{DOCTOR}>"
    message["To"] = to
    message["Subject"] = f"Compte rendu de consultation n° {n}"
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = f"<{uuid.uuid4().hex}@bench.mss.localhost>"
    message.set_content(
        "Bonjour,\n\n" + "Voici le compte rendu de votre consultation. Les examens sont "
        "normaux ; nous nous reverrons dans six mois.\n" * 12 + "\nDr Jean Dupont\n"
    )
    if n % 2:
        message.add_attachment(
            PDF, maintype="application", subtype="pdf", filename=f"compte-rendu-{n}.pdf"
        )
    return smime.sign(message.as_bytes(), signer.cert, signer.key, chain=signer.chain)


async def populate(settings: Settings, patients: int, per_patient: int) -> list[PatientLoad]:
    """Schema, a doctor, active patients and their signed messages delivered by the gateway."""
    await upgrade_async(settings.effective_database_url)
    issued = pki.issue_smime(settings.pki_dir, DOCTOR, id_nat=DOCTOR_ID_NAT)
    certs = load_certs(issued.cert)
    signer = Signer(certs[0], certs[1:], load_key(issued.key))
    db = Database(settings.effective_database_url)
    password_hash = await hash_password_async(PASSWORD)
    users = []
    try:
        async with db.write() as session:
            hospital = await create_organisation(
                session, name="CHU de Nantes", kind=OrganisationKind.HOSPITAL
            )
            doctor = await create_professional(
                session,
                id_nat=DOCTOR_ID_NAT,
                family_name="Dupont",
                given_names="Jean",
                profession_code="10",
                organisation=hospital,
            )
            await create_mailbox(
                session, address=DOCTOR, kind=MailboxKind.PER, owner=MailboxOwner(doctor)
            )
            for n in range(patients):
                phone = f"+336{n:08d}"
                patient = await create_patient(
                    session,
                    settings,
                    ins=patient_ins(n),
                    family_name=f"Patient{n}",
                    given_names="Camille",
                    phone=phone,
                )
                patient.state, patient.activated_at = PatientState.ACTIVE, utcnow()
                patient.password_hash = password_hash
                users.append(PatientLoad(patient.ins, phone))
        services = Services(settings, trust=TrustStore.from_settings(settings, repo_trust_dir=None))
        register_follow_ups()  # as mss serve does where a hub starts
        gateway = Gateway(settings, db, services)
        async with db.read() as session:
            sender = await mailbox_facts(session, DOCTOR)
        assert sender is not None
        for user in users:
            address = f"{user.identifier}@{settings.patient_domain}"
            for n in range(per_patient):
                outcome = await gateway.submit(
                    sender, [address], signed_message(signer, address, n), channel="submission"
                )
                if not outcome.decision.allowed:
                    raise RuntimeError(
                        f"the gateway refused a message to {address}: {outcome.decision.sentence}"
                    )
            async with db.read() as session:
                user.entries = list(
                    (
                        await session.scalars(
                            select(FolderEntry.id)
                            .join(Folder, Folder.id == FolderEntry.folder_id)
                            .join(Mailbox, Mailbox.id == Folder.mailbox_id)
                            .where(Mailbox.address == address, Folder.name == "INBOX")
                            .order_by(FolderEntry.uid)
                        )
                    ).all()
                )
            if len(user.entries) != per_patient:
                raise RuntimeError(
                    f"{address} has {len(user.entries)} messages in INBOX, not {per_patient}"
                )
    finally:
        await db.dispose()
    return users


# --- the two servers, each in its own process ---------------------------------------------


async def serve_portal(data_dir: str, database_url: str, port: int) -> None:
    """--serve-portal: the hub's HTTPS application alone in this process; prints its port."""
    settings = hub_settings(Path(data_dir), database_url)
    db = Database(database_url)
    services = Services(settings, trust=TrustStore.from_settings(settings))
    await serve(build_app(settings, db, services), tls_server_context(settings), port)


async def serve_hub(data_dir: str, database_url: str, processes: str) -> None:
    """--serve-hub: ``mss serve``'s hub (``mss.serve.Hub``) with HTTPS alone on a free port and
    ``[listeners] https_processes = processes``; prints the port and every process serving it."""
    settings = hub_settings(Path(data_dir), database_url)
    for name in ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "workers"):
        setattr(settings.listeners, name, False)
    settings.listeners.https_processes = processes if processes == "auto" else int(processes)
    settings.ports.https = 0
    hub = Hub(settings, Database(database_url))
    await hub.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        children = [child.process.pid for child in hub.https_processes if child.process]
        print(hub.bound["https"], os.getpid(), *children, flush=True)
        await stop.wait()
    finally:
        await hub.stop()


async def serve_trivial(data_dir: str, port: int) -> None:
    """--serve-trivial: one handler answering every GET with a small HTML page; prints its port."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=TRIVIAL_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    await serve(app, tls_server_context(hub_settings(Path(data_dir), "")), port)


async def serve(app: web.Application, context: ssl.SSLContext, port: int) -> None:
    """Listen on ``port`` (0: a free one) beside the other processes of the same server."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context, reuse_port=True)
    await site.start()
    print(runner.addresses[0][1], flush=True)  # port 0: the port the system chose
    await asyncio.Event().wait()


def start_server(
    *args: str, log: Path | None = None
) -> tuple[subprocess.Popen[str], int, list[int]]:
    """This script in ``--serve-...`` mode in a child process (its stderr to ``log`` if given);
    its port once it listens, and the processes serving it (the child, or those it names after
    the port)."""
    with open(log, "w") if log is not None else contextlib.nullcontext() as stderr:
        process = subprocess.Popen(
            [sys.executable, __file__, *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=ROOT,
        )
    assert process.stdout is not None
    words = process.stdout.readline().split()
    if not words or not all(word.isdigit() for word in words):
        stop_server(process)
        tail = log.read_text()[-3000:] if log is not None else ""
        raise RuntimeError(
            f"the server {args[0]} did not start (exit code {process.returncode}) {tail}"
        )
    return process, int(words[0]), [int(word) for word in words[1:]] or [process.pid]


def start_servers(count: int, *args: str) -> tuple[list[subprocess.Popen[str]], int]:
    """``count`` processes of one server on one port (the first picks it, SO_REUSEPORT)."""
    first, port, _pids = start_server(*args, "0")
    processes = [first]
    try:
        for _ in range(count - 1):
            processes.append(start_server(*args, str(port))[0])
    except BaseException:
        for process in processes:
            stop_server(process)
        raise
    return processes, port


def stop_server(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the load, the same client code for both servers --------------------------------------


@dataclass
class Tally:
    """Latencies (seconds) of successful requests by page, and what failed."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"inbox": [], "message": []})
    failures: list[str] = field(default_factory=list)

    def all(self) -> list[float]:
        return [*self.latencies["inbox"], *self.latencies["message"]]


class Visitor:
    """One simulated patient: their own ClientSession (cookies), connector and TLS context."""

    def __init__(self, base: str, context: ssl.SSLContext, user: PatientLoad) -> None:
        self.base, self.user = base, user
        self.http = aiohttp.ClientSession(
            base,
            connector=aiohttp.TCPConnector(ssl=context, limit=1),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )  # cookies for 127.0.0.1

    async def close(self) -> None:
        await self.http.close()

    async def csrf(self, path: str) -> str:
        async with self.http.get(path, allow_redirects=False) as response:
            found = re.search(r'name="csrf" value="([^"]+)"', await response.text())
        if found is None:
            raise RuntimeError(f"no CSRF token on {path} (HTTP {response.status})")
        return found.group(1)

    async def post(self, path: str, data: dict[str, str], expect: str) -> None:
        form = {"csrf": await self.csrf(path), **data}
        async with self.http.post(path, data=form, allow_redirects=False) as response:
            body = await response.text()
            if response.status != 303 or response.headers.get("Location") != expect:
                raise RuntimeError(
                    f"POST {path} for {self.user.identifier}: HTTP {response.status}, "
                    f"expected a redirect to {expect}: {body[:300]}"
                )

    async def login(self, settings: Settings) -> None:
        """Identifier and password, then the one-time code the portal wrote to the SMS outbox."""
        await self.post(
            "/connexion",
            {"identifiant": self.user.identifier, "mot_de_passe": PASSWORD},
            "/connexion/code",
        )
        texts = [
            r["text"]
            for r in await asyncio.to_thread(read_outbox, settings)
            if r.get("channel") == "sms" and r.get("to") == self.user.phone
        ]
        code = re.search(r"\b(\d{6})\b", texts[-1]) if texts else None
        if code is None:
            raise RuntimeError(f"no login code in the outbox for {self.user.phone}")
        await self.post("/connexion/code", {"code": code.group(1)}, "/")

    async def check_signed_in(self) -> None:
        """The inbox and one message really are the patient's (not a login page or an error)."""
        for path, wanted in (
            ("/messages", "Dr Jean Dupont"),
            (f"/messages/{self.user.entries[0]}", "signature vérifiée"),
        ):
            async with self.http.get(path, allow_redirects=False) as response:
                text = await response.text()
            if response.status != 200 or wanted not in text:
                raise RuntimeError(
                    f"GET {path} for {self.user.identifier}: HTTP {response.status}, "
                    f"{wanted!r} not on the page"
                )

    async def get(self, page: str, path: str, tally: Tally) -> None:
        started = time.perf_counter()
        try:
            async with self.http.get(path, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.failures.append(f"GET {path}: {exc!r}")
            return
        if status != 200:
            tally.failures.append(f"GET {path}: HTTP {status}")
            return
        tally.latencies[page].append(time.perf_counter() - started)

    async def browse(self, deadline: float, tally: Tally) -> None:
        """Inbox, then the next message of the inbox, until the deadline."""
        turn = 0
        while time.monotonic() < deadline:
            await self.get("inbox", "/messages", tally)
            await self.get(
                "message", f"/messages/{self.user.entries[turn % len(self.user.entries)]}", tally
            )
            turn += 1


@dataclass(frozen=True)
class Figures:
    rate: float
    p50: float
    p99: float
    requests: int
    failures: list[str]
    cpu: float = 0.0  # the server processes' CPU seconds (user + system) during the load


def processes_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def measure(
    visitors: list[Visitor], seconds: float, pids: list[int]
) -> tuple[Figures, Tally]:
    tally = Tally()
    started, cpu = time.monotonic(), processes_cpu(pids)
    await asyncio.gather(*(v.browse(started + seconds, tally) for v in visitors))
    elapsed, cpu = time.monotonic() - started, processes_cpu(pids) - cpu
    latencies = tally.all()
    return Figures(
        len(latencies) / elapsed,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        len(latencies),
        tally.failures,
        cpu,
    ), tally


async def run_load(
    port: int,
    context: ssl.SSLContext,
    users: list[PatientLoad],
    seconds: float,
    settings: Settings | None,
    pids: list[int],
) -> tuple[Figures, Tally]:
    """Open one session per user (logged in when ``settings`` is given), then browse for
    ``seconds``."""
    visitors = [Visitor(f"https://127.0.0.1:{port}", context, user) for user in users]
    try:
        if settings is not None:
            await asyncio.gather(*(v.login(settings) for v in visitors))
            await asyncio.gather(*(v.check_signed_in() for v in visitors))
        return await measure(visitors, seconds, pids)
    finally:
        await asyncio.gather(*(v.close() for v in visitors))


# --- the run --------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def report(name: str, figures: Figures) -> None:
    print(
        f"  {name:<24} {figures.rate:8.1f} requests/s   p50 {ms(figures.p50)}   p99 "
        f"{ms(figures.p99)}   server CPU {1000 * figures.cpu / max(figures.requests, 1):.2f} "
        f"ms/request   ({figures.requests} requests, {len(figures.failures)} failed)",
        flush=True,
    )


@dataclass(frozen=True)
class Load:
    """What each comparison drives: the same sessions, client TLS and duration."""

    data_dir: Path
    context: ssl.SSLContext
    users: list[PatientLoad]
    seconds: float
    settings: Settings


async def compare(name: str, port: int, pids: list[int], load: Load) -> list[str]:
    """The trivial page in as many processes as ``pids``, then the portal on ``port``; prints
    both, each page's latencies and the ratios; returns what failed."""
    count = len(pids)
    trivial, trivial_port = start_servers(count, "--serve-trivial", str(load.data_dir))
    try:
        baseline, _ = await run_load(
            trivial_port, load.context, load.users, load.seconds, None, [p.pid for p in trivial]
        )
    finally:
        for process in trivial:
            stop_server(process)
    report(f"trivial aiohttp page x{count}", baseline)
    hub, tally = await run_load(port, load.context, load.users, load.seconds, load.settings, pids)
    report(f"{name} x{count}", hub)
    for page in ("inbox", "message"):
        values = tally.latencies[page]
        print(
            f"    {'/messages' if page == 'inbox' else '/messages/{entry}':<22} "
            f"{len(values):6d} requests"
            f"   p50 {ms(percentile(values, 0.5))}   p99 {ms(percentile(values, 0.99))}"
        )
    cpu_ratio = (hub.cpu / max(hub.requests, 1)) / max(
        baseline.cpu / max(baseline.requests, 1), 1e-9
    )
    print(
        f"  ratio portal / trivial: requests/s {hub.rate / baseline.rate:.3f}, "
        f"p50 latency {hub.p50 / baseline.p50:.1f}x, "
        f"p99 latency {hub.p99 / baseline.p99:.1f}x, server CPU per request {cpu_ratio:.1f}x",
        flush=True,
    )
    return baseline.failures + hub.failures


async def create_pg_database() -> tuple[str, str]:
    name = f"mss_bench_portal_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = (
        PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    )
    return name, url


async def drop_pg_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def bench(args: argparse.Namespace, work: Path) -> int:
    data_dir = work / "hub"
    pki.init_pki(data_dir / "pki", ["localhost"], operator_domain="mss.localhost")
    pg_name = ""
    if args.engine == "postgresql":
        pg_name, url = await create_pg_database()
    else:
        url = f"sqlite+aiosqlite:///{data_dir / 'mss.sqlite3'}"
    processes: list[subprocess.Popen[str]] = []
    try:
        settings = hub_settings(data_dir, url)
        started = time.monotonic()
        users = await populate(settings, args.sessions, args.messages_per_patient)
        print(
            f"{args.sessions} patients with {args.messages_per_patient} signed messages "
            f"each, delivered by the "
            f"gateway on {args.engine} in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        context = client_context(settings, trust=TrustStore.from_pki(settings.pki_dir))
        print(
            f"{args.sessions} concurrent sessions for {args.seconds:.0f} s each: inbox, then "
            f"a message, in turn",
            flush=True,
        )

        failures: list[str] = []
        if args.serve in ("portal", "both"):
            portal, portal_port = start_servers(
                args.processes, "--serve-portal", str(data_dir), url
            )
            processes += portal
            failures += await compare(
                f"portal ({args.engine})",
                portal_port,
                [p.pid for p in portal],
                Load(data_dir, context, users, args.seconds, settings),
            )
            for process in portal:
                stop_server(process)
        if args.serve in ("hub", "both"):
            # mss serve logs each request (INFO, as in production): to a file, not the report.
            hub, hub_port, hub_pids = start_server(
                "--serve-hub", str(data_dir), url, args.https_processes, log=work / "hub.log"
            )
            processes.append(hub)
            failures += await compare(
                f"mss serve ({args.engine}, https_processes={args.https_processes})",
                hub_port,
                hub_pids,
                Load(data_dir, context, users, args.seconds, settings),
            )
            stop_server(hub)
            logged = (work / "hub.log").read_text()
            if "Traceback" in logged:  # an error the hub logged: shown, as the others' are
                print(logged[-3000:], file=sys.stderr)
        for line in failures[:10]:
            print(f"  failed: {line}")
        return 1 if failures else 0
    finally:
        for process in processes:
            if process.poll() is None:
                stop_server(process)
        if pg_name:
            await drop_pg_database(pg_name)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sessions", type=int, default=20, help="concurrent logged-in sessions (N)"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each load run (T)")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages-per-patient", type=int, default=5)
    parser.add_argument(
        "--processes", type=int, default=1, help="processes of each server on its port (P)"
    )
    parser.add_argument(
        "--serve",
        choices=("portal", "hub", "both"),
        default="both",
        help="the HTTPS application alone in P processes, mss serve's hub, or both in turn",
    )
    parser.add_argument(
        "--https-processes",
        default="auto",
        help="[listeners] https_processes of the hub (a number, or auto)",
    )
    args = parser.parse_args()
    if args.https_processes != "auto" and not (
        args.https_processes.isdigit() and int(args.https_processes) >= 1
    ):
        parser.error("--https-processes must be auto or a number of at least 1")
    if min(args.sessions, args.messages_per_patient, args.processes) < 1 or args.seconds <= 0:
        parser.error(
            "--sessions, --messages-per-patient and --processes must be at least 1, "
            "--seconds above 0"
        )
    return args


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="mss-portal-bench-"))
    try:
        return asyncio.run(bench(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-portal":
        asyncio.run(serve_portal(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif len(sys.argv) == 5 and sys.argv[1] == "--serve-hub":
        asyncio.run(serve_hub(sys.argv[2], sys.argv[3], sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--serve-trivial":
        asyncio.run(serve_trivial(sys.argv[2], int(sys.argv[3])))
    else:
        import logging

        logging.basicConfig(level=logging.WARNING)
        sys.exit(main())
