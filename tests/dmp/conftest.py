"""A small DMP world on the test's database (SQLite and PostgreSQL), and the document API on TLS.

``world``: a minor patient with a guardian, the professionals of the
matrix (authorised, unauthorised, blocked, médecin traitant, one for
break-glass, the author of the record's documents) and four documents,
one per confidentiality flag. ``api``: the MHD routes served over real TLS
on loopback (optional client certificates against the dev PKI).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from argon2 import PasswordHasher
from cryptography.x509.oid import ExtendedKeyUsageOID

from dmp_bridge import api as dmp_api
from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_authorisation, set_block, set_treating_doctor
from dmp_bridge.documents import DocumentDraft, insert_document
from mss.config import Settings
from mss.crypto.tls import rotating_server_context
from mss.crypto.trust import TrustStore
from mss.db import Database, utcnow
from mss.directory.models import (
    Guardianship,
    Mailbox,
    MailboxKind,
    Organisation,
    Patient,
    PatientState,
    Professional,
)
from mss.http import ImplicitTlsSite
from mss.services import Services
from mss.web import DB, SERVICES, SETTINGS
from portal.app import STATIC as PORTAL_STATIC
from tests.dmp.matrix import DOCUMENTS, FLAGS, ID_NATS
from tests.fixtures_pki import DevPki, Identity
from tests.xdm_factory import INS, make_cda

PASSWORD = "correct horse battery staple"
GUARDIAN_INS = "180017512345678"
_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:
        _HASH.append(PasswordHasher().hash(PASSWORD))
    return _HASH[0]


@dataclass
class World:
    db: Database
    settings: Settings
    patient: Patient
    guardian: Patient
    professionals: dict[str, Professional]
    documents: dict[str, int] = field(default_factory=dict)

    def viewer(self, role: str, reason: str | None = None) -> Viewer:
        if role == "patient":
            return Viewer.for_patient(self.patient)
        if role == "guardian":
            return Viewer.for_guardian(self.guardian)
        return Viewer.for_professional(
            self.professionals[role], break_glass_reason=reason, source="test"
        )

    async def fresh_patient(self) -> Patient:
        async with self.db.read() as session:
            patient = await session.get(Patient, self.patient.id)
            assert patient is not None
            return patient


async def make_world(db: Database, settings: Settings) -> World:
    """Directory rows, consent choices and the four documents."""
    async with db.write() as session:
        organisation = Organisation(name="Cabinet Martin", finess="750000001")
        session.add(organisation)
        await session.flush()
        professionals = {}
        for role, id_nat in ID_NATS.items():
            if role == "break_glass_opposed":
                continue
            professional = Professional(
                id_nat=id_nat,
                family_name=role.upper(),
                given_names="Dr",
                organisation_id=organisation.id if role == "author" else None,
            )
            session.add(professional)
            await session.flush()
            professionals[role] = professional
            session.add(
                Mailbox(
                    address=f"{role}@mss.localhost",
                    kind=MailboxKind.PER,
                    professional_id=professional.id,
                    password_hash=password_hash(),
                )
            )
        professionals["break_glass_opposed"] = professionals["break_glass"]
        patient = Patient(
            ins=INS,
            family_name="NESSI",
            given_names="Ruth",
            state=PatientState.ACTIVE,
            email="ruth@example.org",
            birth_date=dt.date(2012, 7, 14),
        )
        guardian = Patient(
            ins=GUARDIAN_INS, family_name="NESSI", given_names="Paul", state=PatientState.ACTIVE
        )
        session.add_all([patient, guardian])
        await session.flush()
        session.add(
            Mailbox(
                address=f"{INS}@patient.mss.localhost", kind=MailboxKind.PAT, patient_id=patient.id
            )
        )
        session.add(Guardianship(guardian_id=guardian.id, minor_id=patient.id))
        await session.flush()
        me = Viewer.for_patient(patient)
        await set_authorisation(session, me, patient, ID_NATS["authorised"])
        await set_block(session, me, patient, ID_NATS["blocked"])
        await set_treating_doctor(session, me, patient, professionals["treating"])
        world = World(db, settings, patient, guardian, professionals)
        for n, name in enumerate(DOCUMENTS):
            document = await insert_document(
                session,
                patient,
                DocumentDraft(
                    content=make_cda(doc_ext=str(100 + n)),
                    mime_type="text/xml",
                    title=f"Compte rendu {name}",
                    unique_id=f"1.2.250.1.999.1.1.20240101^{100 + n}",
                    type_code="11488-4",
                    type_system="2.16.840.1.113883.6.1",
                    type_label="Compte rendu de consultation",
                    author_id_nat=ID_NATS["author"],
                    author_name="Dr AUTHOR",
                    author_institution="Cabinet Martin",
                    author_institution_id="750000001",
                    creation_time=utcnow() - dt.timedelta(days=n),
                    pdf=b"%PDF-1.4 " + name.encode(),
                    **FLAGS[name],
                ),
            )  # type: ignore[arg-type]
            world.documents[name] = document.id
    return world


@pytest.fixture
async def world(db: Database, settings: Settings) -> World:
    return await make_world(db, settings)


def professional_identity(pki: DevPki, role: str) -> Identity:
    """A TLS client certificate naming the role's idNat (IGC-Santé subject layout)."""
    return pki.issue_smime(
        f"{role}@mss.localhost",
        id_nat=ID_NATS[role],
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        label=f"dmp-client-{role}",
    )


@dataclass
class Api:
    """The document API on https://localhost:<port> and a way to call it as someone."""

    url: str
    pki: DevPki
    world: World

    def context(self, identity: Identity | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.root_cert))
        if identity is not None:
            context.load_cert_chain(identity.cert_path, identity.key_path)
        return context

    async def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = None,
        basic: str | None = None,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: bytes | None = None,
        identity: Identity | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """One request as ``role`` (client certificate), ``identity``, or Basic ``basic``; a body
        as ``json`` or raw ``data``."""
        if role is not None:
            identity = professional_identity(
                self.pki, "break_glass" if role.startswith("break_glass") else role
            )
        sent = dict(headers or {})
        if basic is not None:
            sent["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
        if reason is not None:
            sent["X-Break-Glass-Reason"] = reason
        connector = aiohttp.TCPConnector(ssl=self.context(identity))
        async with (
            aiohttp.ClientSession(connector=connector) as client,
            client.request(method, self.url + path, headers=sent, json=json, data=data) as response,
        ):
            return response.status, await response.read(), dict(response.headers)


@contextlib.asynccontextmanager
async def start_api(
    db: Database, settings: Settings, pki: DevPki, world: World | None = None, *, port: int = 0
) -> AsyncIterator[Api]:
    """The MHD routes (and the /pro login) on https://localhost:<port, else a free one>, client
    certificates optional; the portal's style sheet under /static/."""
    pki.install(settings)
    trust = TrustStore.from_settings(settings, repo_trust_dir=None)
    app = web.Application()
    app[DB], app[SETTINGS], app[SERVICES] = (
        db,
        settings,
        Services(settings, trust=trust),
    )
    dmp_api.setup(app)
    app.router.add_static("/static/", PORTAL_STATIC)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # the site ``mss serve`` runs: TLS per connection with a rotating context
    site = ImplicitTlsSite(
        runner,
        "127.0.0.1",
        port,
        rotating_server_context(settings, client_cert="application", trust=trust),
    )
    await site.start()
    port = site.port
    try:
        yield Api(f"https://localhost:{port}", pki, world)  # type: ignore[arg-type]
    finally:
        await runner.cleanup()


@pytest.fixture
async def api(world: World, dev_pki: DevPki) -> AsyncIterator[Api]:
    async with start_api(world.db, world.settings, dev_pki, world) as running:
        yield running
