"""A running hub for the agenda tests: SMTP gateway on loopback, job runner, a hospital and
patients.

``agenda_hub`` starts the real submission listeners (ports 0) on the
test's database (SQLite and PostgreSQL), registers every job kind the
convocation path uses (gateway DSN, agenda, notifications) and creates a
hospital with its applicative mailbox ``convocations@`` (client
certificate for SMTP, password for IMAP) and two active patients.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import imaplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiosmtplib
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from examples.hospital_convocations import AppointmentRow, ConvocationSender, build_convocation
from mss import agenda, notify
from mss.agenda.models import Appointment, ConvocationReceipt
from mss.config import Settings
from mss.crypto.trust import TrustStore
from mss.db import Database, utcnow
from mss.directory.models import (
    Mailbox,
    MailboxKind,
    Organisation,
    OrganisationKind,
    Patient,
    PatientState,
    Professional,
)
from mss.http import build_app
from mss.jobs import Job, JobRunner
from mss.mailbox.imap import start_imap_servers, stop_imap_servers
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.services import Services
from mss.smtp_gateway import register_jobs, start_smtp_servers
from portal.clock import Clock
from tests.fixtures_pki import DevPki, Identity
from tests.portal.conftest import Hub as PortalHub

APP = "convocations@mss.localhost"
DOCTOR = "jean.dupont@mss.localhost"
INS = "180017512345660"
OTHER_INS = "280017512345610"
PATIENT = f"{INS}@patient.mss.localhost"
OTHER_PATIENT = f"{OTHER_INS}@patient.mss.localhost"
PASSWORD = "hopital sur 2026 !"
PATIENT_EMAIL = "marie.durand@example.org"
PATIENT_PHONE = "+33612345678"
_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:
        _HASH.append(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD))
    return _HASH[0]


def fingerprint(identity: Identity) -> str:
    return hashlib.sha256(identity.cert.public_bytes(Encoding.DER)).hexdigest()


@dataclass
class AgendaHub:
    """The hub under test and the hospital's side of it."""

    settings: Settings
    db: Database
    pki: DevPki
    services: Services
    ports: dict[str, int]
    runner: JobRunner
    sender: ConvocationSender
    ids: dict[str, int] = field(default_factory=dict)

    def row(self, **changes: Any) -> AppointmentRow:
        """A CSV row of the hospital: next week at 9:30 in Paris, 45 minutes, cardiology."""
        start = (utcnow() + dt.timedelta(days=7)).replace(
            hour=8, minute=30, second=0, microsecond=0
        )
        values: dict[str, Any] = {
            "ins": INS,
            "family_name": "Durand",
            "given_names": "Marie",
            "start": start,
            "end": start + dt.timedelta(minutes=45),
            "location": "CHU, bâtiment B",
            "service": "Cardiologie",
            "uid": "rdv-1@chu.example",
            "sequence": 0,
            "cancel": False,
        }
        values.update(changes)
        return AppointmentRow(**values)

    async def send(self, raw: bytes, recipients: list[str] | None = None) -> dict[str, Any]:
        """Submit one message as the APP mailbox (client certificate, implicit TLS); refused
        RCPTs."""
        client = aiosmtplib.SMTP(
            hostname="localhost",
            port=self.ports["submission_tls"],
            use_tls=True,
            tls_context=self.sender.tls_context(),
            timeout=10,
        )
        await client.connect()
        try:
            errors, _ = await client.sendmail(APP, recipients or [PATIENT], raw)
        finally:
            await client.quit()
        return dict(errors)

    async def convoke(self, row: Any = None, **changes: Any) -> None:
        """Build, sign and submit a convocation, then run the follow-up jobs."""
        raw, recipient = build_convocation(row or self.row(**changes), self.sender)
        assert await self.send(raw, [recipient]) == {}
        await self.drain()

    async def drain(self) -> None:
        await self.runner.drain()

    async def appointments(self, ins: str = INS) -> list[Appointment]:
        async with self.db.read() as session:
            patient = (await session.scalars(select(Patient).where(Patient.ins == ins))).one()
            rows = await session.scalars(
                select(Appointment)
                .where(Appointment.patient_id == patient.id)
                .order_by(Appointment.id)
            )
            return list(rows.all())

    async def receipts(self) -> list[ConvocationReceipt]:
        async with self.db.read() as session:
            return list(
                (
                    await session.scalars(
                        select(ConvocationReceipt).order_by(ConvocationReceipt.id)
                    )
                ).all()
            )

    async def jobs(self, kind: str) -> list[Job]:
        async with self.db.read() as session:
            return list(
                (await session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))).all()
            )

    async def stored(self, address: str, folder: str = "INBOX") -> list[StoredMessage]:
        async with self.db.read() as session:
            mailbox = (
                await session.scalars(select(Mailbox).where(Mailbox.address == address))
            ).one()
            rows = await session.scalars(
                select(StoredMessage)
                .join(FolderEntry, FolderEntry.message_id == StoredMessage.id)
                .join(Folder, Folder.id == FolderEntry.folder_id)
                .where(Folder.mailbox_id == mailbox.id, Folder.name == folder)
                .order_by(FolderEntry.uid)
            )
            return list(rows.all())


async def populate(db: Database, hub: AgendaHub, client: Identity) -> None:
    hashed = password_hash()
    now = utcnow()
    async with db.write() as session:
        hospital = Organisation(name="CHU de Test", kind=OrganisationKind.HOSPITAL)
        session.add(hospital)
        await session.flush()
        doctor = Professional(id_nat="810000000001", family_name="Dupont", given_names="Jean")
        session.add(doctor)
        await session.flush()
        session.add_all(
            [
                Mailbox(
                    address=APP,
                    kind=MailboxKind.APP,
                    organisation_id=hospital.id,
                    display_name="CHU Convocations",
                    client_cert_sha256=fingerprint(client),
                    password_hash=hashed,
                ),
                Mailbox(
                    address=DOCTOR,
                    kind=MailboxKind.PER,
                    professional_id=doctor.id,
                    password_hash=hashed,
                ),
            ]
        )
        for ins, given, email, phone in (
            (INS, "Marie", PATIENT_EMAIL, PATIENT_PHONE),
            (OTHER_INS, "Paul", None, "+33698765432"),
        ):
            patient = Patient(
                ins=ins,
                family_name="Durand",
                given_names=given,
                state=PatientState.ACTIVE,
                email=email,
                phone=phone,
                password_hash=hashed,
                activated_at=now,
                opposition_deadline=now - dt.timedelta(days=1),
            )
            session.add(patient)
            await session.flush()
            hub.ids[ins] = patient.id
            session.add(
                Mailbox(
                    address=f"{ins}@patient.mss.localhost",
                    kind=MailboxKind.PAT,
                    display_name=patient.display_name,
                    patient_id=patient.id,
                )
            )
        await session.flush()
        for box in (await session.scalars(select(Mailbox))).all():
            hub.ids[box.address] = box.id


def make_sender(
    settings: Settings, pki: DevPki, port: int, *, implicit_tls: bool = True
) -> ConvocationSender:
    signer = pki.issue_smime(APP, common_name="CHU Convocations")
    client = pki.issue_client(APP)
    return ConvocationSender(
        address=APP,
        display_name="CHU de Test - Convocations",
        host="localhost",
        port=port,
        implicit_tls=implicit_tls,
        ca_file=pki.root_cert,
        client_cert=client.cert_path,
        client_key=client.key_path,
        smime_cert=signer.cert_path,
        smime_key=signer.key_path,
        domain=settings.domain,
    )


@pytest.fixture
async def agenda_hub(settings: Settings, db: Database, dev_pki: DevPki) -> AsyncIterator[AgendaHub]:
    dev_pki.install(settings)
    trust = TrustStore.from_settings(settings, repo_trust_dir=None)
    services = Services(settings, trust=trust)
    runner = JobRunner(db, services=services)
    services.jobs.use(runner)
    for part in (notify, agenda):
        part.register_jobs(runner)
    register_jobs(runner)
    servers = await start_smtp_servers(settings, db, services)
    ports = services.smtp_ports
    hub = AgendaHub(
        settings,
        db,
        dev_pki,
        services,
        ports,
        runner,
        make_sender(settings, dev_pki, ports["submission_tls"]),
    )
    await populate(db, hub, dev_pki.issue_client(APP))
    try:
        yield hub
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


# -- the portal and IMAP next to the gateway ---------------------------------------------------


def server_tls(pki: DevPki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.layout.server.cert, pki.layout.server.key)
    return context


@pytest.fixture
async def portal(agenda_hub: AgendaHub) -> AsyncIterator[PortalHub]:
    """The hub's HTTPS app (portal) on loopback, sharing the gateway's services and job runner."""
    clock = Clock()
    app = build_app(
        agenda_hub.settings,
        agenda_hub.db,
        dataclasses.replace(agenda_hub.services, portal_clock=clock),
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_tls(agenda_hub.pki))
    client = TestClient(
        server, cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(ssl=False)
    )
    await client.start_server()
    try:
        yield PortalHub(client, clock, agenda_hub.settings, agenda_hub.db)
    finally:
        await client.close()


@pytest.fixture
async def imap_port(agenda_hub: AgendaHub) -> AsyncIterator[int]:
    """The IMAP listener with implicit TLS (the hub's certificate), for the hospital's mail
    client."""
    servers = await start_imap_servers(
        agenda_hub.settings, agenda_hub.db, server_tls(agenda_hub.pki)
    )
    try:
        yield servers[-1].sockets[0].getsockname()[1]
    finally:
        await stop_imap_servers(servers)


def read_inbox_over_imap(hub: AgendaHub, port: int, address: str = APP) -> list[bytes]:
    """Every message of INBOX as imaplib fetches it (blocking: run it in a thread)."""
    context = ssl.create_default_context(cafile=str(hub.pki.root_cert))
    with imaplib.IMAP4_SSL("localhost", port, ssl_context=context, timeout=10) as client:
        client.login(address, PASSWORD)
        status, _ = client.select("INBOX", readonly=True)
        assert status == "OK"
        status, data = client.uid("SEARCH", None, "ALL")
        assert status == "OK"
        messages = []
        for uid in data[0].split():
            status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            assert status == "OK"
            messages.append(next(p[1] for p in parts if isinstance(p, tuple)))
        client.logout()
    return messages
