"""DKIM on the relay port: ``[relay] dkim_failure`` over the real listener (mss.policy.dkim)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import aiosmtplib
import dkim as dkimpy
import pytest
from cryptography import x509
from sqlalchemy import select

from mss.config import Settings
from mss.crypto import dkim
from mss.crypto.trust import TrustStore
from mss.db import Database
from mss.directory.identifiers import normalise_dn
from mss.directory.models import Mailbox, MailboxKind, Professional, TrustedDomain
from mss.jobs import JobRunner
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.services import Services
from mss.smtp_gateway import register_jobs, start_smtp_servers
from mss.smtp_gateway.dsn import as_email
from tests.conftest import _pg_admin
from tests.smtp.conftest import DOCTOR, PARTNER_DOMAIN, Hub, message
from tests.smtp.test_relay import PARTNER, relay_client


def partner_signs(hub: Hub) -> dkim.DkimSigningKey:
    """The partner publishes a DKIM key: its record goes in this hub's key table."""
    key = dkim.generate_signing_key(PARTNER_DOMAIN, "relay2026")
    folder = hub.settings.pki_dir / "dkim"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keys.txt").write_text(f"{key.record_name} {key.public_record}\n")
    hub.services.built.dkim_keys = None  # read the table again
    return key


def broken(key: dkim.DkimSigningKey, subject: str) -> bytes:
    """Signed by the partner, then its body changed in transit."""
    raw = dkim.sign(message(PARTNER, DOCTOR, subject=subject), key)
    return raw.replace(b"Bonjour,", b"Bonjour !")


async def send(hub: Hub, raw: bytes) -> None:
    client = await relay_client(hub, hub.pki.issue_operator(PARTNER_DOMAIN))
    try:
        await client.sendmail(PARTNER, [DOCTOR], raw)
    finally:
        await client.quit()


async def test_broken_signature_of_a_signing_domain_is_refused(hub: Hub) -> None:
    hub.settings.relay.dkim_failure = "refuse"
    key = partner_signs(hub)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(hub, broken(key, "Altéré"))
    assert refused.value.code == 550
    assert refused.value.message.startswith("5.7.20 No passing DKIM signature found")
    assert f"{PARTNER_DOMAIN} signs its mail with DKIM" in refused.value.message
    assert await hub.stored(DOCTOR) == []


async def test_unsigned_mail_of_a_signing_domain_is_refused(hub: Hub) -> None:
    hub.settings.relay.dkim_failure = "refuse"
    partner_signs(hub)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(hub, message(PARTNER, DOCTOR, subject="Sans signature"))
    assert refused.value.code == 550
    assert "5.7.20" in refused.value.message and "has no signature" in refused.value.message
    assert await hub.stored(DOCTOR) == []


async def test_broken_signature_is_recorded_by_default(hub: Hub) -> None:
    assert hub.settings.relay.dkim_failure == "record"
    key = partner_signs(hub)
    await send(hub, broken(key, "Altéré"))
    stored = (await hub.stored(DOCTOR))[0]
    assert stored.subject == "Altéré"
    results = stored.raw.split(b"\r\n\r\n", 1)[0]
    assert f"dkim=fail header.d={PARTNER_DOMAIN} header.s=relay2026".encode() in results


async def test_good_signature_passes_when_refusing(hub: Hub) -> None:
    hub.settings.relay.dkim_failure = "refuse"
    key = partner_signs(hub)
    await send(hub, dkim.sign(message(PARTNER, DOCTOR, subject="Signé"), key))
    stored = (await hub.stored(DOCTOR))[0]
    assert f"dkim=pass header.d={PARTNER_DOMAIN}".encode() in stored.raw


async def test_unsigned_mail_of_a_domain_that_does_not_sign_passes(hub: Hub) -> None:
    hub.settings.relay.dkim_failure = "refuse"
    await send(hub, message(PARTNER, DOCTOR, subject="Domaine sans DKIM"))
    stored = (await hub.stored(DOCTOR))[0]
    assert stored.subject == "Domaine sans DKIM"
    assert b"dkim=none" in stored.raw


# -- end to end: hub A signs what it relays, hub B verifies it ------------------------------


@dataclass
class HubB:
    """A second hub instance for ``partner.example``, on its own database and PKI folder."""

    settings: Settings
    db: Database
    address: str


async def start_hub_b(
    hub: Hub, tmp_path: Path, database_url: str, templates: Any, *, stale: bool = False
) -> Any:
    """Hub B: its own settings and database (same engine as A's), A on its trust list, A's
    public DKIM record (not A's private key) in its key table -- or, ``stale``, the record of
    a key A no longer signs with -- the partner operator certificate as its TLS certificate
    (what A's relay checks the peer against)."""
    if database_url.startswith("sqlite"):
        url, pg_name = templates.sqlite_copy(), None
    else:
        pg_name, url = await asyncio.to_thread(templates.pg_copy)
    settings = Settings()
    settings.domain = settings.hostname = PARTNER_DOMAIN
    settings.data_dir = str(tmp_path / "hub-b")
    settings.database_url = url
    for name in ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "https"):
        setattr(settings.ports, name, 0)
    settings.listeners.smtp_processes = 1
    hub.pki.install(settings)
    partner = hub.pki.issue_operator(PARTNER_DOMAIN)
    settings.tls.cert_file, settings.tls.key_file = str(partner.cert_path), str(partner.key_path)
    folder = settings.pki_dir / "dkim"
    a_key = next((hub.settings.pki_dir / "dkim").glob(f"{hub.settings.domain}.*.key"))
    for private in folder.glob("*.key"):
        private.unlink()  # B holds no one's private key: only A's published record
    selector = a_key.name.removesuffix(".key")[len(hub.settings.domain) + 1 :]
    record = dkim.load_signing_key(hub.settings.pki_dir, hub.settings.domain, selector)
    if stale:
        record = dkim.generate_signing_key(hub.settings.domain, selector)
    (folder / "keys.txt").write_text(f"{record.record_name} {record.public_record}\n")
    db = Database(url)
    a_operator = x509.load_pem_x509_certificate(
        (hub.settings.pki_dir / "operator.pem").read_bytes()
    )
    async with db.write() as session:
        doctor = Professional(id_nat="810000000099", family_name="House", given_names="Greg")
        session.add(doctor)
        await session.flush()
        session.add(Mailbox(address=PARTNER, kind=MailboxKind.PER, professional_id=doctor.id))
        session.add(
            TrustedDomain(
                domain=hub.settings.domain,
                operator_dn=normalise_dn(a_operator.subject.rfc4514_string()),
            )
        )
    services = Services(settings, trust=TrustStore.from_settings(settings, repo_trust_dir=None))
    runner = JobRunner(db, services=services)
    services.jobs.use(runner)
    register_jobs(runner)
    servers = await start_smtp_servers(settings, db, services)
    return HubB(settings, db, PARTNER), services, servers, pg_name


async def relay_a_to_b(
    hub: Hub, tmp_path: Path, database_url: str, templates: Any, subject: str, *, stale: bool
) -> list[StoredMessage]:
    """A's doctor writes to B's; A's relay job runs; what B's mailbox holds then."""
    b, services, servers, pg_name = await start_hub_b(
        hub, tmp_path, database_url, templates, stale=stale
    )
    b.settings.relay.dkim_failure = "refuse"  # B acts on failures: only a pass gets through
    try:
        hub.services.relay_routes[PARTNER_DOMAIN] = ("localhost", services.smtp_ports["smtp_relay"])
        client = await hub.login_client(DOCTOR)
        raw = message(DOCTOR, PARTNER, subject=subject)
        assert await client.sendmail(DOCTOR, [PARTNER], raw) == ({}, ANY)
        await client.quit()
        await hub.runner.drain()
        async with b.db.read() as session:
            return list(
                (
                    await session.scalars(
                        select(StoredMessage)
                        .join(FolderEntry, FolderEntry.message_id == StoredMessage.id)
                        .join(Folder, Folder.id == FolderEntry.folder_id)
                        .join(Mailbox, Mailbox.id == Folder.mailbox_id)
                        .where(Mailbox.address == PARTNER, Folder.name == "INBOX")
                    )
                ).all()
            )
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
        await b.db.dispose()
        if pg_name is not None:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


async def test_mail_signed_by_hub_a_is_verified_by_hub_b(
    hub: Hub, tmp_path: Path, database_url: str, db_templates: Any
) -> None:
    stored = await relay_a_to_b(
        hub, tmp_path, database_url, db_templates, "De hub A vers hub B", stale=False
    )
    assert [s.subject for s in stored] == ["De hub A vers hub B"]
    head = bytes(stored[0].raw).split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"Authentication-Results: " + PARTNER_DOMAIN.encode())
    results = head.split(b"\r\nReceived:", 1)[0]
    assert f"dkim=pass header.d={hub.settings.domain}".encode() in results
    assert b"\r\nDKIM-Signature:" in head or head.startswith(b"DKIM-Signature:")


async def test_hub_b_refuses_a_signature_it_cannot_verify_and_a_bounces(
    hub: Hub, tmp_path: Path, database_url: str, db_templates: Any
) -> None:
    """B knows a record of A's selector that is not A's key (A rotated it, say): refused 5.7.20
    at DATA, and A's sender gets the DSN with B's sentence."""
    stored = await relay_a_to_b(hub, tmp_path, database_url, db_templates, "Clé", stale=True)
    assert stored == []
    dsn = as_email((await hub.stored(DOCTOR))[0].raw)
    assert dsn.get_content_type() == "multipart/report"
    text = dsn.get_body(("plain",)).get_content()
    assert PARTNER in text and "5.7.20 No passing DKIM signature found" in text


# -- ARC (RFC 8617): a chain sealed by a forwarding operator is validated and recorded ------


def forwarded(key: dkim.DkimSigningKey, *, tamper_after_seal: bool = False) -> bytes:
    """The partner's forwarder (a list, say) got a signed message, recorded its DKIM pass,
    added a footer (breaking the DKIM signature) and sealed an ARC set with its key."""
    raw = dkim.sign(message(PARTNER, DOCTOR, subject="Transféré"), key)
    raw = (
        f"Authentication-Results: {PARTNER_DOMAIN}; dkim=pass header.d={PARTNER_DOMAIN}\r\n"
    ).encode() + raw
    raw += b"-- \r\nListe des confreres\r\n"
    arc_set = dkimpy.arc_sign(
        raw,
        key.selector.encode(),
        key.domain.encode(),
        key.private,
        PARTNER_DOMAIN.encode(),
        signature_algorithm=b"rsa-sha256",
    )
    sealed = b"".join(arc_set) + raw
    return sealed.replace(b"Subject: Transf", b"Subject: Modifi") if tamper_after_seal else sealed


def partner_signs_rsa(hub: Hub) -> dkim.DkimSigningKey:
    key = dkim.generate_signing_key(PARTNER_DOMAIN, "arc2026", "rsa")
    folder = hub.settings.pki_dir / "dkim"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keys.txt").write_text(f"{key.record_name} {key.public_record}\n")
    hub.services.built.dkim_keys = None
    return key


async def test_arc_chain_of_a_forwarder_is_recorded(hub: Hub) -> None:
    key = partner_signs_rsa(hub)
    await send(hub, forwarded(key))
    stored = (await hub.stored(DOCTOR))[0]
    ours = stored.raw.split(b"\r\nReceived:", 1)[0]
    assert ours.startswith(f"Authentication-Results: {hub.settings.hostname}".encode())
    assert b"dkim=fail" in ours and b"arc=pass (1 ARC set)" in ours


async def test_arc_chain_changed_after_sealing_fails(hub: Hub) -> None:
    key = partner_signs_rsa(hub)
    await send(hub, forwarded(key, tamper_after_seal=True))
    ours = (await hub.stored(DOCTOR))[0].raw.split(b"\r\nReceived:", 1)[0]
    assert b"arc=fail (1 ARC set)" in ours


async def test_no_arc_clause_without_an_arc_set(hub: Hub) -> None:
    await send(hub, message(PARTNER, DOCTOR, subject="Direct"))
    assert b"arc=" not in (await hub.stored(DOCTOR))[0].raw
