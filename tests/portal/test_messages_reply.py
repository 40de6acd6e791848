"""Replies go through the gateway's portal path under the professional-initiates rule; after [FIN]
the page says the conversation is closed, offers no form, and a forged reply gets the policy's
sentence."""

from __future__ import annotations

from html import unescape

import pytest
from sqlalchemy import select

from mss.audit import AuditEvent
from mss.conversations import Conversation, ConversationState
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, OTHER_DOCTOR, Mail, patient_address, setup_mail

INS = "201751234561148"
PATIENT = patient_address(INS)
CLOSED_SENTENCE = (
    f"La conversation avec <{DOCTOR}> a été clôturée par le professionnel ; "
    "le patient ne peut plus y répondre"
)


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    await add_patient(hub.db, INS, "Roux", "Alice")
    return await setup_mail(hub, dev_pki)


async def reply(hub: Hub, entry: int, text: str) -> tuple[int, str, str]:
    response = await hub.post(
        f"/messages/{entry}/repondre", {"texte": text}, csrf_from=f"/messages/{entry}"
    )
    return response.status, response.headers.get("Location", ""), unescape(await response.text())


async def test_reply_reaches_the_doctors_inbox_through_the_gateway(hub: Hub, mail: Mail) -> None:
    original = await mail.send(DOCTOR, PATIENT, "Résultats", "Vos résultats sont normaux.\n")
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, original)
    _response, html = await hub.page(f"/messages/{entry}")
    assert 'name="texte"' in html and "avec l'objet « Re: Résultats »" in unescape(html)
    status, location, _html = await reply(hub, entry, "Merci docteur.\nÀ bientôt.")
    (conversation,) = [m.conversation_id for m in await mail.stored(PATIENT)]
    assert (status, location) == (303, f"/messages/conversation/{conversation}?fait=envoye")
    (received,) = await mail.stored(DOCTOR)
    assert received.subject == "Re: Résultats" and received.conversation_id == conversation
    assert f"In-Reply-To: {original}" in received.headers_text
    assert f"References: {original}" in received.headers_text
    assert received.from_address == PATIENT and received.signature_status == "none"
    assert b"Merci docteur.\r\n\xc3\x80 bient\xc3\xb4t." in received.raw
    assert b"Received: from portal (portal)" in received.raw  # stamped by the gateway's own stages
    (sent,) = await mail.stored(PATIENT, "Sent")
    assert sent.id == received.id
    _response, html = await hub.page(location)
    assert "Votre message a été envoyé." in unescape(html) and "Envoyé par vous" in unescape(html)
    _response, html = await hub.page("/messages/envoyes")
    assert "Re: Résultats" in unescape(html) and "À Dr Jean Dupont" in unescape(html)
    async with hub.db.read() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.patient_id.is_not(None))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert actions[-2:] == [
        "message.sent",
        "message_sent",
    ]  # the gateway's record, then the portal's


async def test_empty_reply_asks_for_text(hub: Hub, mail: Mail) -> None:
    original = await mail.send(DOCTOR, PATIENT, "Résultats")
    await hub.login(INS)
    status, _location, html = await reply(hub, await mail.entry_id(PATIENT, original), "   ")
    assert status == 400 and "Écrivez votre réponse avant de l'envoyer." in html
    assert await mail.stored(DOCTOR) == []


@pytest.mark.parametrize("closing", ["subject", "header"])
async def test_after_fin_no_reply_form_and_a_forged_reply_is_refused(
    hub: Hub, mail: Mail, closing: str
) -> None:
    first = await mail.send(DOCTOR, PATIENT, "Suivi")
    if closing == "subject":
        fin = await mail.send(
            DOCTOR, PATIENT, "[FIN] Suivi", "Je clôture.\n", headers={"In-Reply-To": first}
        )
    else:
        fin = await mail.send(DOCTOR, PATIENT, "Dernier message", headers={"X-MSS-MES": "FIN"})
    async with hub.db.read() as session:
        (conversation,) = (await session.scalars(select(Conversation))).all()
    assert conversation.state is ConversationState.CLOSED
    await hub.login(INS)
    for message_id in (first, fin):
        entry = await mail.entry_id(PATIENT, message_id)
        _response, html = await hub.page(f"/messages/{entry}")
        assert (
            "Dr Jean Dupont a clôturé cette conversation : vous ne pouvez plus y répondre."
            in unescape(html)
        )
        assert 'name="texte"' not in html and "/repondre" not in html
    _response, html = await hub.page(f"/messages/conversation/{conversation.id}")
    assert (
        "a clôturé cette conversation" in unescape(html)
        and "répondre au dernier message" not in html
    )
    _response, html = await hub.page("/messages")
    assert "conversation clôturée" in unescape(html)
    status, _location, html = await reply(hub, entry, "Encore une question")
    assert status == 403 and CLOSED_SENTENCE in html
    assert await mail.stored(DOCTOR) == []
    _response, html = await hub.page("/historique?type=messages")
    assert "Envoi refusé" in unescape(
        html
    ) and "Conversation clôturée par le professionnel" in unescape(html)


async def test_reply_to_a_new_conversation_of_the_doctor_reopens_nothing_closed(
    hub: Hub, mail: Mail
) -> None:
    old = await mail.send(DOCTOR, PATIENT, "Ancien suivi")
    await mail.send(DOCTOR, PATIENT, "[FIN]", headers={"In-Reply-To": old})
    new = await mail.send(DOCTOR, PATIENT, "Nouveau suivi")
    other = await mail.send(OTHER_DOCTOR, PATIENT, "Soins")
    await hub.login(INS)
    status, _location, html = await reply(hub, await mail.entry_id(PATIENT, old), "Sur l'ancien")
    assert status == 403 and CLOSED_SENTENCE in html
    status, _location, _html = await reply(hub, await mail.entry_id(PATIENT, new), "Sur le nouveau")
    assert status == 303
    status, _location, _html = await reply(
        hub, await mail.entry_id(PATIENT, other), "Pour l'infirmière"
    )
    assert status == 303
    assert [m.subject for m in await mail.stored(DOCTOR)] == ["Re: Nouveau suivi"]
    assert [m.subject for m in await mail.stored(OTHER_DOCTOR)] == ["Re: Soins"]
