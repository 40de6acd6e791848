"""Convocations end to end against plain messages, measured in the same run.

    .venv/bin/python bench/convocations.py [-n 10000] [--engine sqlite|postgresql] [--connections 4]
        [--job-process] [--smtp-processes N] [--stages]

A hub (SMTP gateway on loopback and the job workers) runs in this process;
with ``--job-process`` its job workers run in a process of their own, as
``mss serve`` runs them with ``[listeners] job_process = true``, and with
``--smtp-processes N`` N - 1 more processes serve the same SMTP port, as
with ``[listeners] smtp_processes = N``. Another process plays the hospital
with the example script's code path (``examples/hospital_convocations.py``:
``submit_all``, which signs each message and sends it with the APP
mailbox's client certificate over implicit TLS). First N plain signed
messages to patients (the baseline: done when every message is
acknowledged, i.e. committed, and its patient notified), then N
convocations, done when every agenda entry and every patient notification
exists. Prints both rates and the ratio convocations / plain messages, and
the CPU the hub (all its processes) and the hospital spent per message.
``--stages`` shows where this process's gateway sessions spent their time.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime as dt
import hashlib
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.hospital_convocations import (
    AppointmentRow,
    ConvocationSender,
    build_convocation,
    patient_address,
    sign_message,
    submit_all,
    text_part,
)
from mss import agenda, notify, smtp_gateway
from mss.agenda.models import Appointment
from mss.config import Settings
from mss.crypto import pki
from mss.crypto.trust import TrustStore
from mss.db import Database, utcnow
from mss.directory.models import Mailbox, MailboxKind, Organisation, Patient, PatientState
from mss.jobs import Job, JobRunner
from mss.migrate import upgrade_async
from mss.serve import ChildProcess, JobProcess, register_follow_ups, start_smtp_processes
from mss.services import Services
from mss.smtp_gateway.protocol import SharedConnectionLimiter

APP = "convocations@mss.localhost"
PG_ADMIN = os.environ.get("MSS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def ins_of(number: int) -> str:
    base = f"1800175{number:06d}"
    return base + f"{97 - int(base) % 97:02d}"


def build_plain(
    row: AppointmentRow, sender: ConvocationSender, *, xdm: bytes | None = None
) -> tuple[bytes, str]:
    """The baseline: a signed text message of the same size class, without a calendar, built the
    same way."""
    recipient = patient_address(row.ins, sender.domain)
    body = text_part(
        "plain", f"Bonjour {row.given_names} {row.family_name},\n\nVotre dossier est à jour.\n" * 8
    )
    return sign_message(
        sender, recipient, f"Information : {row.service}", body, dt.datetime.now(dt.UTC)
    ), recipient


def rows(count: int, patients: int, tag: str) -> list[AppointmentRow]:
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).replace(
        minute=0, second=0, microsecond=0
    )
    return [
        AppointmentRow(
            ins=ins_of(i % patients),
            family_name="Bench",
            given_names=f"P{i % patients}",
            start=start + dt.timedelta(minutes=15 * i),
            end=start + dt.timedelta(minutes=15 * i + 30),
            location="CHU, bâtiment B",
            service="Cardiologie",
            uid=f"{tag}-{i}@chu.bench",
            line=i + 2,
        )
        for i in range(count)
    ]


def hospital_side(
    sender: ConvocationSender, count: int, patients: int, tag: str, plain: bool, connections: int
) -> tuple[int, float, float]:
    """In the hospital's process: send every row; (refusals, seconds, CPU seconds of this
    process)."""
    batch = rows(count, patients, tag)
    began, cpu = time.perf_counter(), _cpu_seconds()
    refusals = asyncio.run(
        submit_all(
            batch,
            sender,
            connections=connections,
            progress=False,
            build=build_plain if plain else build_convocation,
        )
    )
    return len(refusals), time.perf_counter() - began, _cpu_seconds() - cpu


def _cpu_seconds(children: list[ChildProcess] | None = None) -> float:
    """User and system CPU time of this process (the hub), every thread included, and of its child
    processes."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (
        usage.ru_utime + usage.ru_stime + sum(_child_cpu_seconds(child) for child in children or [])
    )


def _child_cpu_seconds(child: ChildProcess | None) -> float:
    if child is None or child.process is None or not child.process.pid:
        return 0.0
    fields = Path(f"/proc/{child.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def populate(db: Database, settings: Settings, client_sha256: str, patients: int) -> None:
    now = utcnow()
    async with db.write() as session:
        hospital = Organisation(name="CHU Bench")
        session.add(hospital)
        await session.flush()
        session.add(
            Mailbox(
                address=APP,
                kind=MailboxKind.APP,
                organisation_id=hospital.id,
                client_cert_sha256=client_sha256,
            )
        )
        people = [
            Patient(
                ins=ins_of(i),
                family_name="Bench",
                given_names=f"P{i}",
                state=PatientState.ACTIVE,
                phone=f"+336{i:08d}",
                activated_at=now,
                opposition_deadline=now,
            )
            for i in range(patients)
        ]
        session.add_all(people)
        await session.flush()
        session.add_all(
            [
                Mailbox(
                    address=f"{p.ins}@patient.{settings.domain}".lower(),
                    kind=MailboxKind.PAT,
                    patient_id=p.id,
                )
                for p in people
            ]
        )


async def last_job_id(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.max(Job.id))) or 0)


async def notices_sent(db: Database, after_job_id: int) -> int:
    """Patient notifications sent (jobs done) among the jobs queued after ``after_job_id``."""
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.id > after_job_id, Job.kind == "notify.patient", Job.state == "done")
            )
            or 0
        )


async def count_done(db: Database, wanted: int, after_job_id: int) -> tuple[int, int]:
    """(agenda entries, notifications sent); the notifications, a longer count, once the entries
    are all there."""
    async with db.read() as session:
        entries = int(await session.scalar(select(func.count()).select_from(Appointment)) or 0)
    if entries < wanted:
        return entries, 0
    return entries, await notices_sent(db, after_job_id)


async def run(args: argparse.Namespace, work: Path) -> None:
    settings = Settings()
    settings.data_dir = str(work / "var")
    settings.limits.max_connections_per_ip = 200
    settings.log_level = (
        "WARNING"  # the child processes: no line per SMTP command (this one logs nothing)
    )
    for name in ("smtp_relay", "submission", "submission_tls"):
        setattr(settings.ports, name, 0)
    pg_name = None
    if args.engine == "postgresql":
        pg_name = f"mss_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{pg_name}"')
        await conn.close()
        settings.database_url = (
            PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            + "/"
            + pg_name
        )
    settings.data_path.mkdir(parents=True)
    await upgrade_async(settings.effective_database_url)
    await asyncio.to_thread(
        pki.init_pki, settings.pki_dir, ["localhost"], operator_domain=settings.domain
    )
    client = pki.issue_client(settings.pki_dir, APP)
    signer = pki.issue_smime(settings.pki_dir, APP)
    sha = hashlib.sha256(
        x509.load_pem_x509_certificates(client.cert.read_bytes())[0].public_bytes(Encoding.DER)
    ).hexdigest()
    db = Database(settings.effective_database_url)
    patients = min(args.n, 1000)
    await populate(db, settings, sha, patients)
    limiter = None
    if args.smtp_processes > 1:
        limiter = SharedConnectionLimiter(
            settings.limits.max_connections_per_ip, args.smtp_processes
        )
    services = Services(
        settings,
        trust=TrustStore.from_settings(settings, repo_trust_dir=None),
        connection_limiter=limiter,
    )
    runner = JobRunner(db, services=services, batch=100)
    services.jobs.use(runner)
    for part in (smtp_gateway, notify, agenda):
        part.register_jobs(runner)
    job_process = JobProcess(settings) if args.job_process else None
    if job_process is not None:
        job_process.start()
        services.jobs.use(job_process)
    register_follow_ups()  # as mss serve does where a hub starts
    servers = await smtp_gateway.start_smtp_servers(
        settings, db, services, reuse_port=args.smtp_processes > 1
    )
    smtp_children = start_smtp_processes(settings, services, args.smtp_processes - 1)
    children = [c for c in (job_process, *smtp_children) if c is not None]
    worker = asyncio.create_task(job_process.supervise() if job_process else runner.run_forever())
    sender = ConvocationSender(
        address=APP,
        host="localhost",
        port=services.smtp_ports["submission_tls"],
        client_cert=client.cert,
        client_key=client.key,
        smime_cert=signer.cert,
        smime_key=signer.key,
        domain=settings.domain,
        ca_file=pki.PkiLayout(settings.pki_dir).root_cert,
        display_name="CHU Bench",
    )
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    )
    cpu_start, child_start = _cpu_seconds(children), _child_cpu_seconds(job_process)
    try:
        first_job = await last_job_id(db)
        refused, plain_seconds, plain_client_cpu = await loop.run_in_executor(
            pool, hospital_side, sender, args.n, patients, "plain", True, args.connections
        )
        assert refused == 0, f"{refused} plain messages refused"
        acknowledged = time.perf_counter()
        while await notices_sent(db, first_job) < args.n:  # each patient is told of the new message
            await asyncio.sleep(0.2)
        plain_seconds += time.perf_counter() - acknowledged
        plain_stages = services.stage_clock.report()
        services.stage_clock.reset()
        plain_cpu, cpu_start = _cpu_seconds(children) - cpu_start, _cpu_seconds(children)
        plain_child, child_start = (
            _child_cpu_seconds(job_process) - child_start,
            _child_cpu_seconds(job_process),
        )
        first_job = await last_job_id(db)
        began = time.perf_counter()
        refused, sent_seconds, conv_client_cpu = await loop.run_in_executor(
            pool, hospital_side, sender, args.n, patients, "conv", False, args.connections
        )
        assert refused == 0, f"{refused} convocations refused"
        done = await count_done(db, args.n, first_job)
        while done[0] < args.n or done[1] < args.n:
            await asyncio.sleep(0.2)
            done = await count_done(db, args.n, first_job)
        conv_seconds = time.perf_counter() - began
        conv_cpu = _cpu_seconds(children) - cpu_start
        conv_child = _child_cpu_seconds(job_process) - child_start
    finally:
        pool.shutdown()
        runner.stop()
        if job_process is not None:
            job_process.stop()
        for child in smtp_children:
            child._closed()
            child.stop()
        await worker
        for server in servers:
            server.close()
        await db.dispose()
        if pg_name:
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            await conn.close()
    plain_rate, conv_rate = args.n / plain_seconds, args.n / conv_seconds
    print(
        f"engine {args.engine}, {args.n} messages each, {args.connections} SMTP sessions, "
        f"{args.smtp_processes} SMTP process(es), job workers "
        + ("in a process of their own" if args.job_process else "in the hub's process")
    )
    print(
        f"plain signed messages (baseline), until each is stored and its patient notified: "
        f"{plain_seconds:7.1f} s  {plain_rate:8.1f} msg/s"
    )
    print(
        f"convocations, until {done[0]} agenda entries and {done[1]} notifications exist: "
        f"{conv_seconds:7.1f} s  {conv_rate:8.1f} msg/s (submission alone {sent_seconds:.1f} s)"
    )
    print(f"ratio convocations / plain: {conv_rate / plain_rate:.2f}")
    print(
        f"hub CPU per message (all its threads and processes): plain "
        f"{1000 * plain_cpu / args.n:.1f} ms, "
        f"convocation {1000 * conv_cpu / args.n:.1f} ms"
    )
    if job_process is not None:
        print(
            f"  of which the job process: plain {1000 * plain_child / args.n:.1f} ms, "
            f"convocation {1000 * conv_child / args.n:.1f} ms"
        )
    print(
        f"hospital side CPU per message (building, signing, sending): plain "
        f"{1000 * plain_client_cpu / args.n:.1f} ms, "
        f"convocation {1000 * conv_client_cpu / args.n:.1f} ms"
    )
    if args.stages:
        print("where the gateway's time went, plain messages:", plain_stages, sep="\n")
        print("convocations:", services.stage_clock.report(), sep="\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10000, help="messages of each kind (default 10000)")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--connections", type=int, default=4, help="parallel SMTP sessions")
    parser.add_argument(
        "--job-process",
        action="store_true",
        help="run the job workers in a second process ([listeners] job_process = true)",
    )
    parser.add_argument(
        "--smtp-processes",
        type=int,
        default=1,
        help="processes serving the SMTP port ([listeners] smtp_processes)",
    )
    parser.add_argument(
        "--stages", action="store_true", help="print the time spent in each gateway stage"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mss-bench-convocations-"))
    try:
        asyncio.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
