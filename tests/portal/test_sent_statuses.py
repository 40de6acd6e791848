"""The patient's sent messages show each one's delivery status (``mss.delivery_status``), in
French: delivered to the doctor's mailbox, then displayed when the doctor's side reports it;
failed with its code when a DSN comes back. Opening a professional's message moves that
professional's status of it to "displayed" (the portal's read, where the read receipt is
decided)."""

from __future__ import annotations

from html import unescape

import pytest

from mss.delivery_status import statuses_of
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, Mail, patient_address, setup_mail
from tests.portal.status_world import bounced, doctor_displayed

INS = "201751234561148"
PATIENT = patient_address(INS)


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    await add_patient(hub.db, INS, "Roux", "Alice")
    return await setup_mail(hub, dev_pki)


async def states(hub: Hub, sender: str, message_id: str) -> list[tuple[str, str, str]]:
    async with hub.db.read() as session:
        found = (await statuses_of(session, sender, [message_id]))[message_id]
    return [(s.recipient, s.state, s.code) for s in found]


async def test_the_patient_opening_a_message_is_the_doctors_displayed(hub: Hub, mail: Mail) -> None:
    original = await mail.send(DOCTOR, PATIENT, "Résultats")
    assert await states(hub, DOCTOR, original) == [(PATIENT, "delivered", "")]
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, original)
    await hub.page(f"/messages/{entry}")
    await hub.page(f"/messages/{entry}")  # a second reading changes nothing
    assert await states(hub, DOCTOR, original) == [(PATIENT, "displayed", "")]
    assert await states(hub, PATIENT, original) == []  # nobody else reads the doctor's statuses


async def test_sent_page_delivered_then_displayed_or_failed(hub: Hub, mail: Mail) -> None:
    original = await mail.send(DOCTOR, PATIENT, "Résultats")
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, original)
    await hub.page(f"/messages/{entry}")
    response = await hub.post(
        f"/messages/{entry}/repondre", {"texte": "Merci."}, csrf_from=f"/messages/{entry}"
    )
    assert response.status == 303
    (sent,) = await mail.stored(PATIENT, "Sent")
    _response, html = await hub.page("/messages/envoyes")
    assert "Distribué dans la boîte du destinataire" in unescape(html)
    await doctor_displayed(mail, PATIENT, sent.message_id_header)
    assert await states(hub, PATIENT, sent.message_id_header) == [(DOCTOR, "displayed", "")]
    _response, html = await hub.page("/messages/envoyes")
    assert "Ouvert par le destinataire" in unescape(html)
    assert "Distribué dans la boîte" not in unescape(html)
    # a DSN after "displayed" is kept apart: a failure after display is still a failure
    await bounced(mail, PATIENT, sent.id, DOCTOR)
    _response, html = await hub.page("/messages/envoyes")
    text = unescape(html)
    assert f"Non distribué : Boîte inconnue : <{DOCTOR}> (code 5.1.1)" in text
    assert 'class="delivery delivery-failed"' in text
