"""A running SMTP gateway on loopback, with a small directory, for every SMTP test.

``hub`` starts the real listeners (ports 0) on the test's database (SQLite
and PostgreSQL), with the development PKI installed, and gives helpers to
build, sign and send messages and to read what the store holds.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from mss.config import Settings
from mss.crypto.trust import TrustStore
from mss.db import Database, utcnow
from mss.directory.identifiers import normalise_dn
from mss.directory.models import (
    Mailbox,
    MailboxKind,
    MailboxState,
    Organisation,
    OrganisationKind,
    Patient,
    PatientState,
    Professional,
    TrustedDomain,
)
from mss.jobs import JobRunner
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.services import Services
from mss.smtp_gateway import register_jobs, start_smtp_servers
from tests.fixtures_pki import DevPki, Identity

PASSWORD = "correct horse battery staple"
_HASH: list[str] = []

DOCTOR = "jean.dupont@mss.localhost"
OTHER_DOCTOR = "anne.martin@mss.localhost"
PHARMACY = "pharmacie.centrale@mss.localhost"
SERVICE = "cardiologie@mss.localhost"
APP = "convocations@mss.localhost"
CLOSED_BOX = "parti@mss.localhost"
SUSPENDED_BOX = "suspendu@mss.localhost"
PATIENT = "180017512345678@patient.mss.localhost"
PATIENT_STATES = {
    "opposition": ("280017512345601", PatientState.OPPOSITION_WINDOW),
    "opposed": ("280017512345602", PatientState.OPPOSED),
    "deactivated": ("280017512345603", PatientState.DEACTIVATED),
    "closed": ("280017512345604", PatientState.CLOSED),
}
PARTNER_DOMAIN = "partner.example"


def patient_address(state: str) -> str:
    return f"{PATIENT_STATES[state][0]}@patient.mss.localhost"


def password_hash() -> str:
    if not _HASH:
        _HASH.append(PasswordHasher().hash(PASSWORD))
    return _HASH[0]


@dataclass
class Hub:
    """A gateway under test and what a test needs to talk to it."""

    settings: Settings
    db: Database
    pki: DevPki
    services: Services
    ports: dict[str, int]
    runner: JobRunner
    ids: dict[str, int] = field(default_factory=dict)

    def client_tls(self, identity: Identity | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.root_cert))
        if identity is not None:
            context.load_cert_chain(identity.cert_path, identity.key_path)
        return context

    def client(
        self,
        listener: str = "submission",
        *,
        identity: Identity | None = None,
        timeout: float = 10.0,
    ) -> aiosmtplib.SMTP:
        """An aiosmtplib client for a listener (STARTTLS on 2587/2525, implicit TLS on 2465)."""
        implicit = listener == "submission_tls"
        return aiosmtplib.SMTP(
            hostname="localhost",
            port=self.ports[listener],
            use_tls=implicit,
            start_tls=False,
            tls_context=self.client_tls(identity),
            timeout=timeout,
        )

    async def login_client(
        self, login: str = DOCTOR, listener: str = "submission", *, timeout: float = 10.0
    ) -> aiosmtplib.SMTP:
        client = self.client(listener, timeout=timeout)
        await client.connect()
        if listener != "submission_tls":
            await client.starttls()
        await client.login(login, PASSWORD)
        return client

    async def stored(self, address: str, folder: str = "INBOX") -> list[StoredMessage]:
        """The messages in one folder of one mailbox, in UID order (read through the store
        tables)."""
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


def message(
    sender: str,
    to: str | list[str],
    subject: str = "Résultats",
    body: str = "Bonjour,\r\n",
    **headers: str,
) -> bytes:
    """A plain RFC 5322 message with CRLF line endings."""
    recipients = [to] if isinstance(to, str) else to
    lines = [
        f"From: {sender}",
        f"To: {', '.join(recipients)}",
        f"Subject: {subject}",
        f"Date: {email.utils.format_datetime(utcnow())}",
        f"Message-ID: <{uuid.uuid4().hex}@test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def signed(identity: Identity, sender: str, to: str | list[str], **kwargs: Any) -> bytes:
    """A detached S/MIME signed message: the signed entity is the body part, headers outside."""
    raw = message(sender, to, **kwargs)
    return identity.sign(raw)


async def populate(db: Database, hub: Hub) -> None:
    """The directory the tests use, created directly with the models."""
    pki = hub.pki
    app_client = pki.issue_client(APP)
    partner = pki.issue_operator(PARTNER_DOMAIN)
    hashed = password_hash()
    now = utcnow()
    async with db.write() as session:
        hospital = Organisation(name="CHU", kind=OrganisationKind.HOSPITAL)
        pharmacy = Organisation(name="Pharmacie centrale", kind=OrganisationKind.PHARMACY)
        session.add_all([hospital, pharmacy])
        await session.flush()
        doctors = [
            Professional(id_nat="810000000001", family_name="Dupont", given_names="Jean"),
            Professional(id_nat="810000000002", family_name="Martin", given_names="Anne"),
        ]
        session.add_all(doctors)
        await session.flush()
        boxes = [
            Mailbox(
                address=DOCTOR,
                kind=MailboxKind.PER,
                professional_id=doctors[0].id,
                password_hash=hashed,
            ),
            Mailbox(
                address=OTHER_DOCTOR,
                kind=MailboxKind.PER,
                professional_id=doctors[1].id,
                password_hash=hashed,
            ),
            Mailbox(
                address=PHARMACY,
                kind=MailboxKind.ORG,
                organisation_id=pharmacy.id,
                pharmacy=True,
                password_hash=hashed,
            ),
            Mailbox(
                address=SERVICE,
                kind=MailboxKind.ORG,
                organisation_id=hospital.id,
                password_hash=hashed,
            ),
            Mailbox(
                address=APP,
                kind=MailboxKind.APP,
                organisation_id=hospital.id,
                client_cert_sha256=_sha256(app_client),
            ),
            Mailbox(
                address=CLOSED_BOX,
                kind=MailboxKind.PER,
                state=MailboxState.CLOSED,
                professional_id=doctors[0].id,
                password_hash=hashed,
            ),
            Mailbox(
                address=SUSPENDED_BOX,
                kind=MailboxKind.PER,
                state=MailboxState.SUSPENDED,
                professional_id=doctors[0].id,
                password_hash=hashed,
            ),
        ]
        session.add_all(boxes)
        patients = {"active": ("180017512345678", PatientState.ACTIVE), **PATIENT_STATES}
        for ins, state in patients.values():
            patient = Patient(
                ins=ins,
                family_name="Patient",
                state=state,
                password_hash=hashed,
                opposition_deadline=now + dt.timedelta(days=42),
            )
            session.add(patient)
            await session.flush()
            session.add(
                Mailbox(
                    address=f"{ins}@patient.mss.localhost",
                    kind=MailboxKind.PAT,
                    patient_id=patient.id,
                    password_hash=hashed,
                )
            )
        session.add(
            TrustedDomain(
                domain=PARTNER_DOMAIN,
                operator_dn=normalise_dn(partner.cert.subject.rfc4514_string()),
            )
        )
        await session.flush()
        for box in (await session.scalars(select(Mailbox))).all():
            hub.ids[box.address] = box.id


def _sha256(identity: Identity) -> str:
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(identity.cert.public_bytes(Encoding.DER)).hexdigest()


@pytest.fixture
async def hub(settings: Settings, db: Database, dev_pki: DevPki) -> AsyncIterator[Hub]:
    """The SMTP gateway on loopback (submission, implicit TLS, relay) with its job handlers."""
    dev_pki.install(settings)
    trust = TrustStore.from_settings(settings, repo_trust_dir=None)
    services = Services(settings, trust=trust)
    runner = JobRunner(db, services=services)
    services.jobs.use(runner)
    register_jobs(runner)
    servers = await start_smtp_servers(settings, db, services)
    the_hub = Hub(settings, db, dev_pki, services, services.smtp_ports, runner)
    await populate(db, the_hub)
    try:
        yield the_hub
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


class WireClient:
    """A bare SMTP client over implicit TLS: writes exactly the given bytes, reads whole replies."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(
        cls,
        hub: Hub,
        listener: str = "submission_tls",
        *,
        login: str | None = DOCTOR,
        identity: Identity | None = None,
    ) -> WireClient:
        import asyncio

        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            hub.ports[listener],
            ssl=hub.client_tls(identity),
            server_hostname="localhost",
        )
        client = cls(reader, writer)
        assert (await client.reply())[0] == 220
        await client.command(b"EHLO client.test")
        if login is not None:
            import base64

            token = base64.b64encode(f"\0{login}\0{PASSWORD}".encode())
            assert (await client.command(b"AUTH PLAIN " + token))[0] == 235
        return client

    async def reply(self, timeout: float = 10.0) -> tuple[int, str]:
        """One whole reply (all its lines): the code and the text of the last line."""
        import asyncio

        while True:
            line = (await asyncio.wait_for(self.reader.readline(), timeout)).decode()
            if not line:
                raise ConnectionError("the server closed the connection")
            if line[3:4] != "-":
                return int(line[:3]), line[4:].strip()

    async def command(self, line: bytes) -> tuple[int, str]:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass
