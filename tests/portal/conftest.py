"""Portal fixtures: a self-signed TLS certificate, the hub's HTTPS app on loopback, patients.

The app is the real one (``mss.http.build_app``) served over TLS, so the
``Secure`` ``__Host-`` cookie travels as it does in a browser. The portal's
clock is the test hook for time: ``hub.clock.advance(minutes=16)``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mss.config import Settings
from mss.crypto.passwords import hash_secret_now
from mss.db import Database, utcnow
from mss.directory.models import Guardianship, Mailbox, MailboxKind, Patient, PatientState
from mss.http import build_app
from mss.notify import read_outbox
from mss.services import Services
from portal.clock import Clock

PASSWORD = "mon chat dort 3 fois"
_PASSWORD_HASH = hash_secret_now(PASSWORD)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made for this run."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_ssl(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


@dataclass
class Hub:
    """The portal under test: its client (cookies kept), clock, settings and database."""

    client: TestClient
    clock: Clock
    settings: Settings
    db: Database

    async def page(self, path: str) -> tuple[aiohttp.ClientResponse, str]:
        response = await self.client.get(path, allow_redirects=False)
        return response, await response.text()

    async def csrf(self, path: str = "/connexion") -> str:
        _response, html = await self.page(path)
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    async def post(
        self, path: str, data: dict[str, str], csrf_from: str | None = None
    ) -> aiohttp.ClientResponse:
        token = await self.csrf(csrf_from or path)
        return await self.client.post(path, data={"csrf": token, **data}, allow_redirects=False)

    def last_code(self, phone: str) -> str:
        texts = [r["text"] for r in read_outbox(self.settings) if r["to"] == phone]
        assert texts, f"no SMS sent to {phone}"
        found = re.search(r"\b(\d{6})\b", texts[-1])
        assert found
        return found.group(1)

    async def login(
        self, identifier: str, password: str = PASSWORD, phone: str | None = None
    ) -> None:
        response = await self.post(
            "/connexion", {"identifiant": identifier, "mot_de_passe": password}
        )
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == "/connexion/code"
        async with self.db.read() as session:
            from mss.patients import find_patient_by_identifier

            patient = await find_patient_by_identifier(session, identifier)
        assert patient is not None
        code = self.last_code(phone or patient.phone or "")
        response = await self.post("/connexion/code", {"code": code})
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == "/"


@pytest.fixture
async def hub(settings: Settings, db: Database, tls_files: tuple[Path, Path]) -> AsyncIterator[Hub]:
    clock = Clock()
    app = build_app(settings, db, Services(settings, portal_clock=clock))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ssl(tls_files))
    client = TestClient(
        server, cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(ssl=False)
    )
    await client.start_server()
    try:
        yield Hub(client, clock, settings, db)
    finally:
        await client.close()


async def add_patient(
    db: Database,
    ins: str,
    family: str,
    given: str,
    *,
    phone: str | None = "+33612345678",
    email: str | None = None,
    state: PatientState = PatientState.ACTIVE,
    password: bool = True,
    domain: str = "mss.localhost",
) -> Patient:
    """A patient row with its PAT mailbox (the directory's store is not used: it is another
    team's)."""
    async with db.write() as session:
        patient = Patient(
            ins=ins,
            family_name=family,
            given_names=given,
            phone=phone,
            email=email,
            state=state,
            password_hash=_PASSWORD_HASH if password else None,
            opposition_deadline=utcnow() + dt.timedelta(days=42),
            activated_at=utcnow() if state is PatientState.ACTIVE else None,
        )
        session.add(patient)
        await session.flush()
        session.add(
            Mailbox(
                address=f"{ins.lower()}@patient.{domain}",
                kind=MailboxKind.PAT,
                display_name=patient.display_name,
                patient_id=patient.id,
            )
        )
    return patient


async def add_guardianship(db: Database, guardian: Patient, minor: Patient) -> None:
    async with db.write() as session:
        session.add(Guardianship(guardian_id=guardian.id, minor_id=minor.id))


async def second_visitor(hub: Hub) -> Hub:
    """Another browser on the same portal (its own cookies); closed with the test's loop."""
    client = TestClient(
        hub.client.server,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        connector=aiohttp.TCPConnector(ssl=False),
    )
    await client.start_server()
    return Hub(client, hub.clock, hub.settings, hub.db)
