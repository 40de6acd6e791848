"""The sent messages' delivery statuses in Debian's Chromium, in a phone-sized window (390x844).

The patient replies to her doctor; "Envoyés" says the reply was delivered to his mailbox;
once his mail client reports it displayed (a signed RFC 8098 MDN through the gateway,
read by the report job) it says so; a DSN that comes back for the reply shows the failure
with its reason and code. Screenshots: test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, Mail, patient_address, setup_mail
from tests.portal.status_world import bounced, doctor_displayed
from tests.portal.test_browser import INS, fits_the_phone, phone_page, shot, sign_in

pytestmark = pytest.mark.browser
PATIENT = patient_address(INS)


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    await add_patient(hub.db, INS, "Martin", "Claire")
    return await setup_mail(hub, dev_pki)


@pytest.fixture
async def page(hub: Hub) -> AsyncIterator[Page]:
    async with phone_page(str(hub.client.make_url("/"))) as opened:
        yield opened


async def test_sent_message_delivered_then_displayed_then_failed(
    page: Page, hub: Hub, mail: Mail
) -> None:
    await mail.send(DOCTOR, PATIENT, "Résultats d'analyse", "Vos résultats sont normaux.\n")
    await sign_in(page, hub)
    await page.get_by_role("link", name="Lire les messages").click()
    await page.get_by_role("link", name=re.compile("^Dr Jean Dupont")).click()
    await page.get_by_label("Votre réponse").fill("Merci docteur.")
    await page.get_by_role("button", name="Envoyer la réponse").click()
    await expect(page.get_by_text("Votre message a été envoyé.")).to_be_visible()
    await page.goto("/messages/envoyes")
    sent = page.get_by_role("link", name=re.compile("^À Dr Jean Dupont"))
    await expect(sent).to_contain_text("Re: Résultats d'analyse")
    status = sent.locator(".delivery")
    await expect(status).to_have_text("Distribué dans la boîte du destinataire")
    await fits_the_phone(page)
    await shot(page, "40-envoye-distribue")
    (reply,) = await mail.stored(PATIENT, "Sent")
    await doctor_displayed(mail, PATIENT, reply.message_id_header)
    await page.reload()
    await expect(status).to_have_text("Ouvert par le destinataire")
    await fits_the_phone(page)
    await shot(page, "41-envoye-ouvert")
    await bounced(mail, PATIENT, reply.id, DOCTOR)
    await page.reload()
    await expect(status).to_have_text(f"Non distribué : Boîte inconnue : <{DOCTOR}> (code 5.1.1)")
    await fits_the_phone(page)
    await shot(page, "42-envoye-echec")
