"""A tour of the portal pages the other browser tests do not photograph, in Chromium at 390x844:
each fits the phone, keeps the navigation on one line, and is kept as a screenshot
(test-artifacts/screenshots/page-*.png) for a reviewer to look at."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from mss.smtp_gateway import start_smtp_servers
from tests.portal.conftest import Hub
from tests.portal.messaging import DOCTOR, Mail, build
from tests.portal.test_browser import fits_the_phone, go_to, shot, sign_in
from tests.portal.test_messages_browser import PATIENT, mail, page, smtp_send
from tests.portal.test_navigation_browser import _bar_rows

pytestmark = pytest.mark.browser
__all__ = ["mail", "page"]


async def _check(page: Page, name: str) -> None:
    await fits_the_phone(page)
    assert await _bar_rows(page) == 1
    await shot(page, name)


async def test_every_other_page_on_a_phone(page: Page, hub: Hub, mail: Mail) -> None:
    servers = await start_smtp_servers(hub.settings, hub.db, mail.services)
    try:
        for subject in ("Convocation IRM", "Compte rendu de consultation"):
            raw, _original = build(DOCTOR, PATIENT, subject, "Bonjour,\nà bientôt.\nDr Dupont\n")
            await smtp_send(mail, raw, PATIENT)
        await sign_in(page, hub)
        await _check(page, "page-01-accueil")
        await page.locator("nav.site-nav").get_by_role("link", name="Messages").click()
        await page.get_by_role("link", name=re.compile("^Dr Jean Dupont")).click()
        # One tap: the latest message, its text shown.
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Compte rendu de consultation"
        )
        await expect(page.get_by_text("à bientôt.")).to_be_visible()
        await _check(page, "page-02-dernier-message")
        await page.get_by_role("link", name="Retour à la conversation").click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Conversation avec")
        await _check(page, "page-03-conversation")
        await page.goto("/messages/envoyes")
        await _check(page, "page-04-messages-envoyes")
        await page.goto("/messages/nouveau")
        await _check(page, "page-05-nouveau-message")
        await page.goto("/dossier/acces")
        await _check(page, "page-06-dossier-acces")
        await page.goto("/dossier/acces/opposition")
        await _check(page, "page-07-dossier-opposition")
        await go_to(page, "Sécurité")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Sécurité de la connexion")
        await _check(page, "page-08-securite")
        await page.goto("/compte/desactiver")
        await _check(page, "page-09-compte-confirmer")
        await page.locator("nav.site-nav").get_by_role("link", name="Agenda").click()
        await _check(page, "page-10-agenda-vide")
        await go_to(page, "Profil médical")
        await _check(page, "page-11-profil-vide")
        await go_to(page, "Historique des accès")
        event = page.locator(".event").filter(has_text="Message reçu").first
        await expect(event).to_contain_text("Dr Jean Dupont (médecin")
        await expect(event).not_to_contain_text("@")
        await _check(page, "page-12-historique")
        await page.goto("/dossier/documents/999999")
        await fits_the_phone(page)
        await shot(page, "page-13-introuvable")
        await page.get_by_role("button", name="Se déconnecter").click()
        await page.goto("/aide")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Aide")
        await fits_the_phone(page)
        await shot(page, "page-14-aide-deconnecte")
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
