"""Messages in Debian's Chromium, in a phone-sized window (390x844).

A doctor's signed mail arrives over real SMTP (submission, STARTTLS, AUTH) on loopback, the patient
reads it, sees who signed it, downloads its attachment, replies (the reply lands in the doctor's
INBOX), then cannot reply after [FIN]; a prescription goes to a pharmacy; a hostile HTML mail is
shown inert (no script runs, no request leaves the portal). Screenshots:
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest
from aiohttp import web
from playwright.async_api import FilePayload, Page, expect

from mss.crypto import pki
from mss.smtp_gateway import start_smtp_servers
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import (
    DOCTOR,
    DOCTOR_RPPS,
    PDF,
    PHARMACY,
    SMTP_PASSWORD,
    Attach,
    Mail,
    build,
    patient_address,
    setup_mail,
)
from tests.portal.test_browser import INS, fits_the_phone, go_to, phone_page, shot, sign_in
from tests.smtp.test_encryption import openssl_encrypt

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


async def smtp_send(mail: Mail, raw: bytes, to: str, *, encrypt_to: Path | None = None) -> None:
    """The doctor's mail client: submission port, STARTTLS, AUTH, a signed message (encrypted
    to the certificate ``encrypt_to`` with ``openssl smime -encrypt`` when given)."""
    port = mail.services.smtp_ports["submission"]
    context = ssl.create_default_context(cafile=str(mail.pki.root_cert))
    client = aiosmtplib.SMTP(
        hostname="localhost", port=port, start_tls=False, tls_context=context, timeout=20
    )
    await client.connect()
    await client.starttls()
    await client.login(DOCTOR, SMTP_PASSWORD)
    signed = mail.identity(DOCTOR).sign(raw)
    if encrypt_to is not None:
        signed = openssl_encrypt(signed, encrypt_to, encrypt_to.parent)
    errors, _reply = await client.sendmail(DOCTOR, [to], signed)
    await client.quit()
    assert errors == {}


async def test_signed_mail_over_smtp_read_reply_then_fin(page: Page, hub: Hub, mail: Mail) -> None:
    servers = await start_smtp_servers(hub.settings, hub.db, mail.services)
    try:
        raw, _original = build(
            DOCTOR,
            PATIENT,
            "Résultats d'analyse",
            "Bonjour Madame Martin,\nvos résultats sont normaux.\nDr Dupont\n",
            attachments=[Attach("résultats.pdf", "application/pdf", PDF)],
        )
        await smtp_send(mail, raw, PATIENT)
        await sign_in(page, hub)
        await expect(page.get_by_text("1 message non lu")).to_be_visible()
        await page.get_by_role("link", name="Lire les messages").click()
        conversation = page.get_by_role("link", name=re.compile("^Dr Jean Dupont"))
        await expect(conversation).to_contain_text("Médecin · CHU de Nantes")
        await expect(conversation).to_contain_text("1 non lu")
        await fits_the_phone(page)
        await shot(page, "13-messages")
        await conversation.click()  # one tap: the conversation opens at its latest message
        await expect(page.get_by_role("heading", level=1)).to_have_text("Résultats d'analyse")
        signature = page.get_by_role("note", name="Signature du message")
        await expect(signature).to_contain_text("Signature vérifiée")
        await expect(signature).to_contain_text(
            f"Signé par Dr Jean Dupont, RPPS {DOCTOR_RPPS} ({DOCTOR}), signature vérifiée."
        )
        await expect(page.get_by_text("vos résultats sont normaux.")).to_be_visible()
        await fits_the_phone(page)
        await shot(page, "14-message-signe")
        async with page.expect_download() as waiting:
            await page.get_by_role("link", name="Télécharger « résultats.pdf »").click()
        download = await waiting.value
        assert download.suggested_filename == "résultats.pdf"
        await page.get_by_label("Votre réponse").fill("Merci docteur, à mardi.")
        await page.get_by_role("button", name="Envoyer la réponse").click()
        await expect(page.get_by_text("Votre message a été envoyé.")).to_be_visible()
        await expect(page.get_by_text("Envoyé par vous")).to_be_visible()
        (reply,) = await mail.stored(DOCTOR)  # in the doctor's INBOX, as IMAP would serve it
        assert reply.subject == "Re: Résultats d'analyse" and reply.from_address == PATIENT
        assert b"Merci docteur, \xc3\xa0 mardi." in reply.raw
        fin, _fin_id = build(
            DOCTOR,
            PATIENT,
            "[FIN] Résultats d'analyse",
            "Bonne journée.\n",
            headers={"In-Reply-To": reply.message_id_header},
        )
        await smtp_send(mail, fin, PATIENT)
        await page.reload()
        await expect(
            page.get_by_text("Dr Jean Dupont a clôturé cette conversation")
        ).to_be_visible()
        await page.get_by_role("link", name="[FIN] Résultats d'analyse").click()
        await expect(page.get_by_text("vous ne pouvez plus y répondre")).to_be_visible()
        await expect(page.get_by_label("Votre réponse")).to_have_count(0)
        await fits_the_phone(page)
        await shot(page, "15-conversation-cloturee")
        await page.evaluate("""() => {
            const form = document.createElement('form');
            form.method = 'post'; form.action = location.pathname + '/repondre';
            for (const [name, value] of [['csrf', document.querySelector('input[name=csrf]').value],
                                         ['texte', 'Une dernière question']]) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value; form.appendChild(input);
            }
            document.body.appendChild(form); form.submit();
        }""")
        await expect(page.get_by_role("heading", name="Réponse refusée")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text(
            f"La conversation avec <{DOCTOR}> a été clôturée par le professionnel"
        )
        await shot(page, "16-reponse-refusee")
        assert len(await mail.stored(DOCTOR)) == 1
        await go_to(page, "Historique des accès")
        await page.get_by_label("Type").select_option(label="Messages lus et envoyés")
        await page.get_by_role("button", name="Filtrer").click()
        for label in (
            "Message lu",
            "Pièce jointe téléchargée",
            "Message envoyé",
            "Envoi refusé",
            "Conversation clôturée par le professionnel",
            "Message reçu",
        ):
            await expect(
                page.locator(".event .what", has_text=re.compile(f"^{label}"))
            ).not_to_have_count(0)
        await expect(page.locator(".event").filter(has_text="Envoi refusé").first).to_contain_text(
            "Claire Martin (vous-même)"
        )
        # No internal address: the refusal's sentence names the doctor as the directory does.
        await expect(page.locator(".event").filter(has_text="Envoi refusé").first).to_contain_text(
            "La conversation avec Dr Jean Dupont a été clôturée"
        )
        await expect(page.locator(".history")).not_to_contain_text("@")
        await fits_the_phone(page)
        await shot(page, "17-historique-messages")
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


async def test_encrypted_mail_over_smtp_is_shown_as_encrypted(
    page: Page, hub: Hub, mail: Mail
) -> None:
    """Signed, then encrypted to the patient mailbox's certificate by the doctor's client: the
    hub decrypts and verifies it, and the page says it travelled encrypted."""
    sealed_for = pki.issue_encryption(hub.settings.pki_dir, PATIENT)
    servers = await start_smtp_servers(hub.settings, hub.db, mail.services)
    try:
        raw, _id = build(DOCTOR, PATIENT, "Résultats chiffrés", "Vos résultats sont normaux.\n")
        await smtp_send(mail, raw, PATIENT, encrypt_to=sealed_for.cert)
        await sign_in(page, hub)
        await page.get_by_role("link", name="Lire les messages").click()
        await page.get_by_role("link", name=re.compile("^Dr Jean Dupont")).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Résultats chiffrés")
        signature = page.get_by_role("note", name="Signature du message")
        await expect(signature).to_contain_text("Signature vérifiée")
        await expect(signature).to_contain_text("Message chiffré")
        await expect(page.get_by_text("Vos résultats sont normaux.")).to_be_visible()
        await fits_the_phone(page)
        await shot(page, "14b-message-chiffre")
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


async def test_prescription_to_a_pharmacy(page: Page, hub: Hub, mail: Mail) -> None:
    await sign_in(page, hub)
    await page.get_by_role("link", name="Envoyer une ordonnance à une pharmacie").click()
    await expect(
        page.get_by_role("heading", name="Envoyer une ordonnance à une pharmacie")
    ).to_be_visible()
    await page.get_by_label("Pharmacie Centrale").check()
    await page.get_by_label("Photo ou PDF de l'ordonnance").set_input_files(
        files=[FilePayload(name="ordonnance.pdf", mimeType="application/pdf", buffer=PDF)]
    )
    await page.get_by_label("Message pour la pharmacie (facultatif)").fill("Je passe demain matin.")
    await fits_the_phone(page)
    await shot(page, "18-ordonnance")
    await page.get_by_role("button", name="Envoyer à la pharmacie").click()
    await expect(
        page.get_by_role("heading", name="Conversation avec Pharmacie Centrale")
    ).to_be_visible()
    await expect(page.get_by_text("Votre message a été envoyé.")).to_be_visible()
    await fits_the_phone(page)
    await shot(page, "19-ordonnance-envoyee")
    (received,) = await mail.stored(PHARMACY)
    assert received.subject == "Ordonnance" and b'filename="ordonnance.pdf"' in received.raw
    await go_to(page, "Historique des accès")
    await expect(page.locator(".event").filter(has_text="Message envoyé").first).to_contain_text(
        "Claire Martin (vous-même)"
    )


def hostile_html(tracker: str) -> str:
    return f"""<html><head><script src="{tracker}/script.js"></script><script>window.__pwned = 1</script>
<link rel="stylesheet" href="{tracker}/style.css"><style>@import url({tracker}/import.css);
body {{ background: url({tracker}/background.png) }}</style>
<meta http-equiv="refresh" content="0;url={tracker}/refresh"></head>
<body onload="window.__pwned = 2"><p>Bonjour Claire, voici votre <b>bilan</b>.</p>
<img src="{tracker}/pixel.gif" alt="">
<img src="x" onerror="window.__pwned = 3; new Image().src = '{tracker}/onerror'">
<iframe src="{tracker}/frame"></iframe><video poster="{tracker}/poster.png"></video>
<object data="{tracker}/object"></object><svg><image href="{tracker}/svg.png"/></svg>
<table background="{tracker}/table.png"><tr><td style="background:url({tracker}/td.png)">Glycémie</td>
<td>0,95 g/L</td></tr></table>
<p><a href="javascript:window.__pwned=4">Cliquez ici</a> ou <a href="https://exemple.fr/info">en savoir plus</a></p>
<form action="{tracker}/form"><input name="q" autofocus onfocus="window.__pwned = 5"></form>
</body></html>"""


async def test_hostile_html_mail_is_inert(page: Page, hub: Hub, mail: Mail) -> None:
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="")

    tracker_app = web.Application()
    tracker_app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(tracker_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        message_id = await mail.send(
            DOCTOR, PATIENT, "Votre bilan", "", html=hostile_html(f"http://127.0.0.1:{port}")
        )
        entry = await mail.entry_id(PATIENT, message_id)
        await sign_in(page, hub)
        portal = str(hub.client.make_url("/")).rstrip("/")
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        await page.goto(f"/messages/{entry}")
        await page.wait_for_load_state("networkidle")
        await expect(page.get_by_text("Bonjour Claire, voici votre")).to_be_visible()
        await expect(page.get_by_text("Glycémie")).to_be_visible()
        await expect(
            page.get_by_text("contenus externes de ce message ont été bloqués")
        ).to_be_visible()
        link = page.get_by_role("link", name="en savoir plus")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        await expect(page.locator(".message-html a", has_text="Cliquez ici")).not_to_have_attribute(
            "href", re.compile(".")
        )
        assert await page.evaluate("typeof window.__pwned") == "undefined"
        assert (
            await page.locator(
                ".message-html img, .message-html iframe, .message-html form"
            ).count()
            == 0
        )
        await fits_the_phone(page)
        await shot(page, "20-html-neutralise")
        outside = [url for url in requests if not url.startswith(portal)]
        assert outside == [] and hits == []
        assert any(url.endswith(f"/messages/{entry}") for url in requests)
    finally:
        await runner.cleanup()
