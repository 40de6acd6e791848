"""Opening a message whose sender asked for a read receipt sends one RFC 8098 "displayed" MDN back
through the gateway, once; not when the request points elsewhere, and not where the
professional-initiates rule refuses it."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mss.audit import AuditEvent
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, OTHER_DOCTOR, Mail, patient_address, setup_mail

INS = "201751234561148"
PATIENT = patient_address(INS)


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    await add_patient(hub.db, INS, "Roux", "Alice")
    return await setup_mail(hub, dev_pki)


async def actions(hub: Hub) -> list[str]:
    async with hub.db.read() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent.action).where(AuditEvent.actor == INS).order_by(AuditEvent.id)
                )
            ).all()
        )


async def test_displayed_mdn_is_sent_once(hub: Hub, mail: Mail) -> None:
    original = await mail.send(
        DOCTOR, PATIENT, "Résultats", headers={"Disposition-Notification-To": DOCTOR}
    )
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, original)
    for _ in range(3):
        response, _html = await hub.page(f"/messages/{entry}")
        assert response.status == 200
    (mdn,) = await mail.stored(DOCTOR)
    parsed = email.message_from_bytes(mdn.raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "disposition-notification"
    assert parsed["In-Reply-To"] == original and parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["Subject"] == "Accusé de lecture : Résultats"
    text, notification = parsed.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(notification, EmailMessage)
    assert text.get_content_type() == "text/plain" and "a été affiché" in text.get_content()
    assert notification.get_content_type() == "message/disposition-notification"
    fields = notification.as_bytes().decode()
    assert "Disposition: manual-action/MDN-sent-automatically; displayed" in fields
    assert (
        f"Original-Message-ID: {original}" in fields
        and f"Final-Recipient: rfc822; {PATIENT}" in fields
    )
    ((entry_row, _message),) = await mail.entries(PATIENT)
    assert set(entry_row.flags.split()) == {"\\Seen", "$MDNSent"}
    assert (await actions(hub)).count("mdn_sent") == 1
    _response, html = await hub.page("/messages/envoyes")
    assert "Accusé de lecture envoyé" in html


async def test_no_mdn_without_request_or_to_another_address(hub: Hub, mail: Mail) -> None:
    plain = await mail.send(DOCTOR, PATIENT, "Sans accusé")
    elsewhere = await mail.send(
        DOCTOR, PATIENT, "Accusé ailleurs", headers={"Disposition-Notification-To": OTHER_DOCTOR}
    )
    await hub.login(INS)
    for message_id in (plain, elsewhere):
        await hub.page(f"/messages/{await mail.entry_id(PATIENT, message_id)}")
    assert await mail.stored(DOCTOR) == [] and await mail.stored(OTHER_DOCTOR) == []
    assert "mdn_sent" not in await actions(hub)


async def test_mdn_refused_by_the_conversation_rule_is_not_retried(hub: Hub, mail: Mail) -> None:
    first = await mail.send(DOCTOR, PATIENT, "Résultats")
    fin = await mail.send(
        DOCTOR,
        PATIENT,
        "[FIN] Résultats",
        headers={"Disposition-Notification-To": DOCTOR, "In-Reply-To": first},
    )
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, fin)
    await hub.page(f"/messages/{entry}")
    await hub.page(f"/messages/{entry}")
    assert await mail.stored(DOCTOR) == []
    assert (await actions(hub)).count("mdn_refused") == 1
    _response, html = await hub.page("/historique?type=messages")
    assert "Accusé de lecture non envoyé" in html
