"""DKIM on the relay port: ``[relay] dkim_failure`` over the real listener (mss.policy.dkim)."""

from __future__ import annotations

import aiosmtplib
import pytest

from mss.crypto import dkim
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
