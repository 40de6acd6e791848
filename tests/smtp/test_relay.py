"""The operator relay: mutual TLS in (2525), and the durable outbound queue with DSN on refusal."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP

from mss.smtp_gateway.dsn import as_email
from tests.fixtures_pki import DevPki
from tests.smtp.conftest import DOCTOR, PARTNER_DOMAIN, PATIENT, Hub, message

PARTNER = f"dr.house@{PARTNER_DOMAIN}"


async def relay_client(hub: Hub, identity: Any) -> aiosmtplib.SMTP:
    client = hub.client("smtp_relay", identity=identity)
    await client.connect()
    await client.starttls()
    await client.ehlo()
    return client


async def test_trusted_operator_delivers_to_a_professional(hub: Hub) -> None:
    client = await relay_client(hub, hub.pki.issue_operator(PARTNER_DOMAIN))
    errors, _ = await client.sendmail(
        PARTNER, [DOCTOR], message(PARTNER, DOCTOR, subject="Confrère")
    )
    await client.quit()
    assert errors == {}
    stored = (await hub.stored(DOCTOR))[0]
    assert stored.subject == "Confrère"
    assert b"with ESMTPS" in stored.raw


async def test_relay_without_client_certificate_is_refused(hub: Hub) -> None:
    client = await relay_client(hub, None)
    code, text = await client.execute_command(b"MAIL", f"FROM:<{PARTNER}>".encode())
    assert (code, text) == (
        530,
        (
            "5.7.0 The relay port requires TLS with a client certificate of an "
            "operator of the trust space"
        ),
    )
    assert "auth" not in client.esmtp_extensions
    await client.quit()


async def test_relay_before_starttls_is_refused(hub: Hub) -> None:
    client = hub.client("smtp_relay")
    await client.connect()
    await client.ehlo()
    code, text = await client.execute_command(b"MAIL", f"FROM:<{PARTNER}>".encode())
    assert code == 530 and "STARTTLS" in text
    await client.quit()


async def test_relay_with_an_untrusted_ca_fails_the_handshake(
    hub: Hub, untrusted_pki: DevPki
) -> None:
    client = hub.client("smtp_relay", identity=untrusted_pki.operator)
    await client.connect()
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError, ConnectionError)):
        await client.starttls()
        await client.ehlo()
        await client.sendmail(PARTNER, [DOCTOR], message(PARTNER, DOCTOR))
    client.close()
    assert await hub.stored(DOCTOR) == []


async def test_operator_not_on_the_trust_list_is_refused(hub: Hub) -> None:
    client = await relay_client(hub, hub.pki.issue_operator("stranger.example"))
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        await client.sendmail("x@stranger.example", [DOCTOR], message("x@stranger.example", DOCTOR))
    assert refused.value.code == 550
    assert "is not on the MSSante trust list" in refused.value.message
    await client.quit()


async def test_relay_refusals_sender_and_recipients(hub: Hub) -> None:
    client = await relay_client(hub, hub.pki.issue_operator(PARTNER_DOMAIN))
    code, text = await client.execute_command(b"MAIL", f"FROM:<x@{hub.settings.domain}>".encode())
    assert code == 550 and "claims a domain of this hub" in text
    code, _ = await client.execute_command(b"MAIL", f"FROM:<{PARTNER}>".encode())
    assert code == 250
    code, text = await client.execute_command(b"RCPT", b"TO:<someone@gmail.com>")
    assert (code, text) == (550, "5.7.1 Relaying denied: gmail.com is not a domain of this hub")
    code, text = await client.execute_command(b"RCPT", f"TO:<{PATIENT}>".encode())
    assert code == 550 and "receives only from professionals of this hub" in text
    await client.quit()


class PartnerSink:
    """Another operator's MTA: STARTTLS with our CA, refuses one recipient, records the rest."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("unknown@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 OK"


async def start_partner(hub: Hub) -> tuple[PartnerSink, asyncio.Server]:
    sink = PartnerSink()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    partner = hub.pki.issue_operator(PARTNER_DOMAIN)
    context.load_cert_chain(partner.cert_path, partner.key_path)
    context.load_verify_locations(cafile=str(hub.pki.root_cert))
    context.verify_mode = ssl.CERT_REQUIRED
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, tls_context=context, require_starttls=True, hostname=PARTNER_DOMAIN),
        "127.0.0.1",
        0,
    )
    hub.services.relay_routes[PARTNER_DOMAIN] = ("localhost", server.sockets[0].getsockname()[1])
    return sink, server


async def test_outbound_relay_with_our_operator_certificate_and_dsn(hub: Hub) -> None:
    sink, server = await start_partner(hub)
    try:
        client = await hub.login_client(DOCTOR)
        raw = message(DOCTOR, [PARTNER, f"unknown@{PARTNER_DOMAIN}"], subject="Adressage")
        errors, _ = await client.sendmail(DOCTOR, [PARTNER, f"unknown@{PARTNER_DOMAIN}"], raw)
        await client.quit()
        assert errors == {}
        await hub.runner.drain()
    finally:
        server.close()
    assert [(f, r) for f, r, _ in sink.received] == [(DOCTOR, [PARTNER])]
    assert b"Subject: Adressage" in sink.received[0][2]
    dsn = as_email((await hub.stored(DOCTOR))[0].raw)
    assert dsn.get_content_type() == "multipart/report"
    text = dsn.get_body(("plain",)).get_content()
    assert f"unknown@{PARTNER_DOMAIN}" in text and "n'a pas pu être distribué" in text
    assert "could not be delivered" in text and "No such user here" in text


async def test_remote_domain_outside_the_trust_space_is_refused(hub: Hub) -> None:
    client = await hub.login_client(DOCTOR)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await client.sendmail(DOCTOR, ["someone@gmail.com"], message(DOCTOR, "someone@gmail.com"))
    code, text = refused.value.recipients[0].code, refused.value.recipients[0].message
    assert (code, text) == (
        550,
        (
            "5.7.1 <someone@gmail.com> is outside the trust space: gmail.com is not "
            "on the MSSante trust list"
        ),
    )
    await client.quit()
