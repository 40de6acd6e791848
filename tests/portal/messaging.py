"""What the portal's messaging tests share: a directory, signed mail through the gateway, store
reads.

Professionals' messages take the gateway's own path (``Gateway.submit`` with
the submission channel, or real SMTP in the browser tests), signed with
certificates of the development PKI, so they are stored exactly as in
production: signature verified, conversation opened, folders filled.
"""

from __future__ import annotations

import email.policy
import email.utils
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mss.crypto import smime
from mss.crypto.keys import load_certs
from mss.crypto.trust import TrustStore
from mss.db import utcnow
from mss.directory.facts import mailbox_facts
from mss.directory.models import Mailbox, MailboxKind, OrganisationKind
from mss.directory.store import (
    MailboxOwner,
    create_mailbox,
    create_organisation,
    create_professional,
)
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.services import Services
from mss.smtp_gateway import Gateway
from mss.web import SERVICES
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub

DOCTOR = "jean.dupont@mss.localhost"
OTHER_DOCTOR = "anne.martin@mss.localhost"
PHARMACY = "pharmacie.centrale@mss.localhost"
DOCTOR_RPPS, OTHER_RPPS, PHARMACIST_RPPS = "10003456786", "10098765430", "10012345673"
SMTP_PASSWORD = "correct horse battery staple"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


def patient_address(ins: str) -> str:
    return f"{ins.lower()}@patient.mss.localhost"


@dataclass(frozen=True)
class Attach:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Mail:
    """The hub's messaging side for a portal test: gateway, PKI identities, store reads."""

    hub: Hub
    pki: DevPki
    gateway: Gateway
    services: Services
    sent: list[str] = field(default_factory=list)

    def identity(self, address: str) -> Any:
        id_nat = {DOCTOR: DOCTOR_RPPS, OTHER_DOCTOR: OTHER_RPPS}.get(address)
        return self.pki.issue_smime(address, id_nat=f"8{id_nat}" if id_nat else None)

    async def send(
        self,
        sender: str,
        to: str,
        subject: str = "Vos résultats",
        text: str = "Bonjour,\n",
        *,
        html: str | None = None,
        attachments: Sequence[Attach] = (),
        headers: dict[str, str] | None = None,
        sign: bool = True,
        opaque: bool = False,
        encrypt_to: Path | None = None,
    ) -> str:
        """A professional's signed message through the gateway (encrypted to the certificate
        ``encrypt_to`` when given, RFC 8551 enveloped-data); returns its Message-ID."""
        raw, message_id = build(
            sender, to, subject, text, html=html, attachments=attachments, headers=headers
        )
        if sign:
            raw = self.identity(sender).sign(raw, detached=not opaque)
        if encrypt_to is not None:
            raw = smime.encrypt(raw, load_certs(encrypt_to)[:1])
        async with self.hub.db.read() as session:
            facts = await mailbox_facts(session, sender)
        assert facts is not None
        outcome = await self.gateway.submit(facts, [to], raw, channel="submission")
        assert outcome.decision.allowed, outcome.decision.sentence
        self.sent.append(message_id)
        return message_id

    async def stored(self, address: str, folder: str = "INBOX") -> list[StoredMessage]:
        """The messages of one folder of one mailbox, by UID (read through the store tables)."""
        return [message for _entry, message in await self.entries(address, folder)]

    async def entries(
        self, address: str, folder: str = "INBOX"
    ) -> list[tuple[FolderEntry, StoredMessage]]:
        async with self.hub.db.read() as session:
            rows = await session.execute(
                select(FolderEntry, StoredMessage)
                .join(StoredMessage, StoredMessage.id == FolderEntry.message_id)
                .join(Folder, Folder.id == FolderEntry.folder_id)
                .join(Mailbox, Mailbox.id == Folder.mailbox_id)
                .where(Mailbox.address == address, Folder.name == folder)
                .order_by(FolderEntry.uid)
            )
            return [(entry, message) for entry, message in rows.all()]

    async def entry_id(self, address: str, message_id: str, folder: str = "INBOX") -> int:
        for entry, message in await self.entries(address, folder):
            if message.message_id_header == message_id:
                return entry.id
        raise AssertionError(f"{message_id} is not in {address}/{folder}")


def build(
    sender: str,
    to: str,
    subject: str,
    text: str,
    *,
    html: str | None = None,
    attachments: Sequence[Attach] = (),
    headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """A MIME message with CRLF line endings (plain, alternative or mixed) and its Message-ID."""
    message = EmailMessage(policy=email.policy.SMTP)
    message_id = f"<{uuid.uuid4().hex}@test.mss.localhost>"
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(utcnow())
    message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    if html is not None and text:
        message.set_content(text)
        message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(text)
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(
            item.data, maintype=maintype, subtype=subtype, filename=item.filename
        )
    return message.as_bytes(), message_id


async def setup_mail(hub: Hub, pki: DevPki) -> Mail:
    """The PKI installed and trusted, a doctor, another doctor and a pharmacy in the directory."""
    pki.install(hub.settings)
    app = hub.client.app
    assert app is not None
    services = app[SERVICES]
    services.built.trust = TrustStore.from_settings(hub.settings, repo_trust_dir=None)
    async with hub.db.write() as session:
        hospital = await create_organisation(
            session, name="CHU de Nantes", kind=OrganisationKind.HOSPITAL
        )
        officine = await create_organisation(
            session, name="Pharmacie Centrale", kind=OrganisationKind.PHARMACY
        )
        doctor = await create_professional(
            session,
            id_nat=f"8{DOCTOR_RPPS}",
            family_name="Dupont",
            given_names="Jean",
            profession_code="10",
            organisation=hospital,
        )
        other = await create_professional(
            session,
            id_nat=f"8{OTHER_RPPS}",
            family_name="Martin",
            given_names="Anne",
            profession_code="60",
            organisation=hospital,
        )
        await create_mailbox(
            session,
            address=DOCTOR,
            kind=MailboxKind.PER,
            owner=MailboxOwner(doctor),
            password=SMTP_PASSWORD,
        )
        await create_mailbox(
            session, address=OTHER_DOCTOR, kind=MailboxKind.PER, owner=MailboxOwner(other)
        )
        await create_mailbox(
            session,
            address=PHARMACY,
            kind=MailboxKind.ORG,
            owner=MailboxOwner(organisation=officine),
            display_name="Pharmacie Centrale",
            pharmacy=True,
        )
    return Mail(hub, pki, Gateway(hub.settings, hub.db, services), services)
