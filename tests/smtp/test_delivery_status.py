"""Delivery statuses (``mss.delivery_status``) through the real gateway, relay and jobs.

Transcripts of the events that move a status: local delivery (``delivered``), the relay
to another operator (``relayed``), a refusal there (the DSN job: ``failed`` with its
enhanced status), and the reports that come back to the sender's mailbox (an RFC 8098
MDN from the recipient's side: ``displayed``, ``dispatched``; a late or foreign one
changes nothing).
"""

from __future__ import annotations

import uuid

from mss.delivery_status import RecipientStatus, statuses_of
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PARTNER_DOMAIN, PHARMACY, SERVICE, Hub
from tests.smtp.conftest import message as plain_message
from tests.smtp.test_relay import PARTNER, relay_client, start_partner


async def status_of(hub: Hub, message_id: str, sender: str = DOCTOR) -> dict[str, tuple[str, str]]:
    async with hub.db.read() as session:
        found: list[RecipientStatus] = (await statuses_of(session, sender, [message_id]))[
            message_id
        ]
    return {s.recipient: (s.state, s.code) for s in found}


async def submit(hub: Hub, sender: str, to: list[str], raw: bytes) -> None:
    client = await hub.login_client(sender)
    try:
        errors, _ = await client.sendmail(sender, to, raw)
    finally:
        await client.quit()
    assert errors == {}
    await hub.runner.drain()


def message_id_of(raw: bytes) -> str:
    line = next(x for x in raw.split(b"\r\n") if x.startswith(b"Message-ID:"))
    return line.split(b":", 1)[1].strip().decode()


def mdn(reporter: str, to: str, original: str, disposition: str, final: str = "") -> bytes:
    """An RFC 8098 MDN as the recipient's mail client writes it."""
    boundary = uuid.uuid4().hex
    return (
        f"From: {reporter}\r\nTo: {to}\r\nSubject: Disposition notification\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@test>\r\nIn-Reply-To: {original}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=disposition-notification;\r\n"
        f' boundary="{boundary}"'
        f"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Le message a été affiché.\r\n"
        f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Reporting-UA: client.example; Thunderbird\r\n"
        f"Final-Recipient: rfc822; {final or reporter}\r\n"
        f"Original-Message-ID: {original}\r\n"
        f"Disposition: {disposition}\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def dsn(reporter: str, to: str, original: str, recipient: str, action: str, status: str) -> bytes:
    """An RFC 3464 DSN as the other operator's MTA writes it (In-Reply-To names the original)."""
    boundary = uuid.uuid4().hex
    return (
        f"From: {reporter}\r\nTo: {to}\r\nSubject: Delivery Status Notification\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{PARTNER_DOMAIN}>\r\nIn-Reply-To: {original}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f' boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nDelivered.\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.{PARTNER_DOMAIN}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"--{boundary}--\r\n"
    ).encode()


DISPLAYED = "manual-action/MDN-sent-manually; displayed"
DISPATCHED = "automatic-action/MDN-sent-automatically; dispatched"


async def test_delivered_then_displayed_by_the_recipients_mdn(hub: Hub) -> None:
    raw = plain_message(DOCTOR, [OTHER_DOCTOR, SERVICE], subject="Adressage")
    original = message_id_of(raw)
    await submit(hub, DOCTOR, [OTHER_DOCTOR, SERVICE], raw)
    assert await status_of(hub, original) == {
        OTHER_DOCTOR: ("delivered", ""),
        SERVICE: ("delivered", ""),
    }
    await submit(hub, OTHER_DOCTOR, [DOCTOR], mdn(OTHER_DOCTOR, DOCTOR, original, DISPLAYED))
    await submit(hub, SERVICE, [DOCTOR], mdn(SERVICE, DOCTOR, original, DISPATCHED))
    assert await status_of(hub, original) == {
        OTHER_DOCTOR: ("displayed", ""),
        SERVICE: ("dispatched", ""),
    }
    # a late "dispatched" after "displayed" is stale: the status stays
    await submit(hub, OTHER_DOCTOR, [DOCTOR], mdn(OTHER_DOCTOR, DOCTOR, original, DISPATCHED))
    assert (await status_of(hub, original))[OTHER_DOCTOR] == ("displayed", "")


async def test_a_report_moves_only_its_own_senders_status(hub: Hub) -> None:
    raw = plain_message(DOCTOR, [OTHER_DOCTOR], subject="Adressage")
    original = message_id_of(raw)
    await submit(hub, DOCTOR, [OTHER_DOCTOR], raw)
    # sent to someone else than the original's sender: it speaks of no message of theirs
    await submit(hub, OTHER_DOCTOR, [PHARMACY], mdn(OTHER_DOCTOR, PHARMACY, original, DISPLAYED))
    # from a domain that is not the final recipient's
    foreign = mdn(OTHER_DOCTOR, DOCTOR, original, DISPLAYED, final=f"x@{PARTNER_DOMAIN}")
    await submit(hub, OTHER_DOCTOR, [DOCTOR], foreign)
    assert await status_of(hub, original) == {OTHER_DOCTOR: ("delivered", "")}
    assert await status_of(hub, original, sender=PHARMACY) == {}


async def test_relayed_and_failed_at_the_other_operator(hub: Hub) -> None:
    sink, server = await start_partner(hub)
    unknown = f"unknown@{PARTNER_DOMAIN}"
    raw = plain_message(DOCTOR, [PARTNER, unknown], subject="Adressage")
    try:
        await submit(hub, DOCTOR, [PARTNER, unknown], raw)
    finally:
        server.close()
    assert len(sink.received) == 1
    statuses = await status_of(hub, message_id_of(raw))
    assert statuses[PARTNER] == ("relayed", "")
    assert statuses[unknown][0] == "failed" and statuses[unknown][1].startswith("5.")
    # the partner's MTA reports the delivery (RFC 3464): relayed → delivered. From its
    # postmaster: the relay listener refuses a null reverse-path from an operator (a gap of
    # the gateway, docs/standards.md)
    client = await relay_client(hub, hub.pki.issue_operator(PARTNER_DOMAIN))
    report = dsn(
        f"postmaster@{PARTNER_DOMAIN}", DOCTOR, message_id_of(raw), PARTNER, "delivered", "2.0.0"
    )
    try:
        errors, _ = await client.sendmail(f"postmaster@{PARTNER_DOMAIN}", [DOCTOR], report)
    finally:
        await client.quit()
    assert errors == {}
    await hub.runner.drain()
    assert (await status_of(hub, message_id_of(raw)))[PARTNER] == ("delivered", "2.0.0")
    # then its side reports the message displayed: delivered → displayed
    client = await relay_client(hub, hub.pki.issue_operator(PARTNER_DOMAIN))
    report = mdn(PARTNER, DOCTOR, message_id_of(raw), DISPLAYED)
    try:
        errors, _ = await client.sendmail(PARTNER, [DOCTOR], report)
    finally:
        await client.quit()
    assert errors == {}
    await hub.runner.drain()
    statuses = await status_of(hub, message_id_of(raw))
    assert statuses[PARTNER] == ("displayed", "")
    assert statuses[unknown][0] == "failed"  # a failure is final
