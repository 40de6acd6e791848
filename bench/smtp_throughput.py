"""SMTP throughput: the whole gateway against a bare aiosmtpd sink measured in the same run.

    .venv/bin/python bench/smtp_throughput.py [--messages 400] [--sessions 8]
                                              [--engines sqlite,postgresql] [--profile]

N S/MIME-signed messages of about 20 KB are sent over M parallel sessions
(aiosmtplib), first to an aiosmtpd sink that only answers 250 (the
baseline), then through the gateway: implicit TLS, AUTH PLAIN, S/MIME
verification, policy, durable commit (professional -> patient, so the
signature is required and the conversation is updated). The gateway runs
on SQLite and on PostgreSQL (127.0.0.1:5432, $MSS_TEST_POSTGRES). It prints
messages/s for each and the ratio gateway / sink; ``--profile`` prints
where the gateway's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import shutil
import ssl
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
from aiosmtpd.smtp import SMTP

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mss.config import Settings
from mss.crypto import pki, smime
from mss.crypto.keys import load_certs, load_key
from mss.crypto.trust import TrustStore
from mss.db import Database, utcnow
from mss.directory.models import Mailbox, MailboxKind, Patient, PatientState, Professional
from mss.directory.store import hash_password
from mss.migrate import upgrade_async
from mss.serve import register_follow_ups
from mss.services import Services
from mss.smtp_gateway import start_smtp_servers

SENDER = "jean.dupont@mss.localhost"
PATIENT = "180017512345678@patient.mss.localhost"
PASSWORD = "bench password 2026"
PG_ADMIN = os.environ.get("MSS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def make_messages(pki_dir: Path, count: int, lines: int = 320) -> list[bytes]:
    """``count`` distinct signed messages of ``lines`` text lines (320: about 20 KB; signing is
    not timed)."""
    issued = pki.issue_smime(pki_dir, SENDER)
    certs, key = load_certs(issued.cert), load_key(issued.key)
    filler = "Compte rendu de consultation, ligne de texte pour le volume. \r\n" * lines
    out = []
    for n in range(count):
        raw = (
            f"From: {SENDER}\r\nTo: {PATIENT}\r\nSubject: Compte rendu {n}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@bench>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{filler}"
        ).encode()
        out.append(smime.sign(raw, certs[0], key, chain=certs[1:]))
    return out


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def send_all(messages: list[bytes], sessions: int, make_client: Any) -> float:
    """Send every message over ``sessions`` connections; the elapsed seconds."""
    shares = [messages[i::sessions] for i in range(sessions)]

    async def one(share: list[bytes]) -> None:
        client = await make_client()
        for raw in share:
            errors, _ = await client.sendmail(SENDER, [PATIENT], raw)
            assert not errors
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(one(share) for share in shares))
    return time.perf_counter() - start


async def run_sink(messages: list[bytes], sessions: int) -> float:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(), hostname="sink"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def client() -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        return smtp

    try:
        return await send_all(messages, sessions, client)
    finally:
        server.close()


async def populate(db: Database) -> None:
    hashed = hash_password(PASSWORD)
    async with db.write() as session:
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
                    password_hash=hashed,
                ),
                Mailbox(address=PATIENT, kind=MailboxKind.PAT, patient_id=patient.id),
            ]
        )


async def run_gateway(
    messages: list[bytes],
    sessions: int,
    settings: Settings,
    profile: cProfile.Profile | None,
    breakdown: list[str],
) -> float:
    await upgrade_async(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    await populate(db)
    services = Services(settings, trust=TrustStore.from_settings(settings, repo_trust_dir=None))
    register_follow_ups()  # as mss serve does where a hub starts
    servers = await start_smtp_servers(settings, db, services)
    port = services.smtp_ports["submission_tls"]
    context = ssl.create_default_context(cafile=str(settings.pki_dir / "root-ca.pem"))

    async def client() -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(hostname="localhost", port=port, use_tls=True, tls_context=context)
        await smtp.connect()
        await smtp.login(SENDER, PASSWORD)
        return smtp

    try:
        if profile is not None:
            profile.enable()
        return await send_all(messages, sessions, client)
    finally:
        if profile is not None:
            profile.disable()
        breakdown.append(stage_breakdown(services, db))
        for server in servers:
            server.close()
        await db.dispose()


def stage_breakdown(services: Services, db: Database) -> str:
    """Where a message's time goes inside the gateway (wall clock, overlapping across sessions)."""
    from mss.group_commit import _writers

    lines = [services.stage_clock.report()]
    for name, writer in _writers.get(db, {}).items():
        stats = writer.stats
        mean = stats.requests / stats.batches if stats.batches else 0.0
        lines.append(
            f"    {name}: {stats.batches} transactions for {stats.requests} deliveries "
            f"(mean batch {mean:.1f}, {1000 * stats.seconds / max(stats.batches, 1):.1f} ms each, "
            f"{stats.retried_alone} retried alone)"
        )
    return "\n".join(lines)


def gateway_settings(base: Path, pki_dir: Path, database_url: str, engine: str) -> Settings:
    settings = Settings()
    settings.data_dir = str(base / engine)
    settings.database_url = database_url
    settings.ports.submission = settings.ports.smtp_relay = settings.ports.submission_tls = 0
    settings.listeners.submission = settings.listeners.smtp_relay = False
    shutil.copytree(pki_dir, settings.pki_dir)
    return settings


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--profile", action="store_true", help="print the gateway's profile")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mss-bench-"))
    pki_dir = base / "pki"
    pki.init_pki(pki_dir, ["localhost", "mss.localhost"], operator_domain="mss.localhost")
    messages = make_messages(pki_dir, args.messages)
    size = sum(map(len, messages)) // len(messages)
    print(f"{args.messages} signed messages of {size} bytes over {args.sessions} sessions")
    sink = args.messages / await run_sink(messages, args.sessions)
    print(f"  bare aiosmtpd sink           {sink:8.1f} msg/s")
    rates: list[tuple[str, float, list[str]]] = []
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        profile = cProfile.Profile() if args.profile else None
        breakdown: list[str] = []
        if engine == "sqlite":
            url = f"sqlite+aiosqlite:///{base / 'bench.sqlite3'}"
            rate = args.messages / await run_gateway(
                messages,
                args.sessions,
                gateway_settings(base, pki_dir, url, engine),
                profile,
                breakdown,
            )
        else:
            name = f"mss_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = (
                PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
                + "/"
                + name
            )
            try:
                rate = args.messages / await run_gateway(
                    messages,
                    args.sessions,
                    gateway_settings(base, pki_dir, url, engine),
                    profile,
                    breakdown,
                )
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
        print(f"  gateway on {engine:<17} {rate:8.1f} msg/s")
        rates.append((engine, rate, breakdown))
        if profile is not None:
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(20)
            print(text.getvalue())
    # The machine may be shared: the sink runs again after the gateways and the mean is the
    # baseline.
    again = args.messages / await run_sink(messages, args.sessions)
    sink = (sink + again) / 2
    print(f"  bare aiosmtpd sink, again    {again:8.1f} msg/s   baseline (mean) {sink:.1f} msg/s")
    for engine, rate, breakdown in rates:
        print(
            f"  {engine:<12} {rate:8.1f} msg/s   ratio gateway/sink {rate / sink:.2f}"
            f"{'' if rate / sink >= 0.5 else '  (below the 0.5 target)'}"
        )
        print("\n".join(breakdown))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
