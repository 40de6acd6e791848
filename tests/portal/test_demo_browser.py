"""The demo data as a demo visitor sees it, in Chromium at 390x844: ``mss init --demo``, then
Marie Durand and Louis Petit (and his daughter Emma's space) log in with their e-mail.

Screenshots go to test-artifacts/screenshots/ (``demo-*``), with the others.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.portal.conftest import Hub
from tests.portal.test_browser import fits_the_phone, last_code, open_menu, page, shot
from tests.test_demo_data import demo, demo_account

pytestmark = pytest.mark.browser
__all__ = ["page"]


async def _sign_in(page: Page, hub: Hub, account: dict[str, Any]) -> None:
    await page.goto("/connexion")
    await page.get_by_label("Identifiant").fill(account["email"])
    await page.get_by_label("Mot de passe").fill(account["password"])
    await page.get_by_role("button", name="Continuer").click()
    await expect(page.get_by_role("heading", name="Code de connexion")).to_be_visible()
    await page.get_by_label("Code à 6 chiffres").fill(last_code(hub, account["phone"]))  # type: ignore[arg-type]
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")


async def _nav(page: Page, name: str) -> None:
    bar = page.locator("nav.site-nav").get_by_role("link", name=name, exact=True)
    if await bar.count():
        await bar.click()
    else:
        await open_menu(page)
        await page.locator("#menu-plus-liste").get_by_role("link", name=name, exact=True).click()


async def _walk(page: Page, who: str, expected: dict[str, list[str]]) -> None:
    """Each page of the space: what it must show, and a screenshot."""
    await _nav(page, "Mon dossier")
    for title in expected["dossier"]:
        await expect(page.get_by_role("link", name=title).first).to_be_visible()
    await fits_the_phone(page)
    await shot(page, f"demo-{who}-01-dossier")
    await page.get_by_role("link", name=expected["dossier"][0]).first.click()
    await expect(page.locator("main")).to_contain_text(expected["narrative"][0])
    pdf_link = page.get_by_role("link", name="Télécharger le PDF")
    await expect(pdf_link).to_be_visible()
    pdf = await page.request.get(str(await pdf_link.get_attribute("href")))
    assert pdf.ok and (await pdf.body()).startswith(b"%PDF-")
    await shot(page, f"demo-{who}-02-document")
    await _nav(page, "Messages")
    for subject in expected["messages"]:
        await expect(page.locator("main")).to_contain_text(subject)
    await shot(page, f"demo-{who}-03-messages")
    await page.get_by_role("link", name=expected["messages"][0]).first.click()
    for text in expected["latest"]:  # the conversation opens at its latest message
        await expect(page.locator("main")).to_contain_text(text)
    await shot(page, f"demo-{who}-04-message")
    await _nav(page, "Agenda")
    for entry in expected["agenda"]:
        await expect(page.locator("main")).to_contain_text(entry)
    await shot(page, f"demo-{who}-05-agenda")
    await _nav(page, "Profil médical")
    for label in expected["profile"]:
        await expect(page.locator("main")).to_contain_text(label)
    await shot(page, f"demo-{who}-06-profil")
    await _nav(page, "Historique des accès")
    lines = page.locator("main li")
    assert await lines.count() >= 8
    for sentence in expected["history"]:
        await expect(page.locator("main")).to_contain_text(sentence)
    shown = await page.locator("main").inner_text()
    assert "document_filed" not in shown and "profile.item_added" not in shown
    await shot(page, f"demo-{who}-07-historique")


async def test_marie_and_louis_with_emma_see_their_demo_data(page: Page, hub: Hub) -> None:
    accounts = await demo(hub.settings, hub.db)
    await _sign_in(page, hub, demo_account(accounts, "patient"))
    await _walk(
        page,
        "marie",
        {
            "dossier": ["Consultation de cardiologie", "Bilan sanguin"],
            "narrative": ["Palpitations bénignes, sans maladie du cœur."],
            "messages": [
                "Résultats de votre bilan sanguin",
                "conversation clôturée",
                "Votre échographie du cœur",
                "Convocation : Échographie du cœur",
            ],
            "latest": [
                "Nous referons le point dans six mois.",
                "Signature vérifiée",
                "Dr Jean Dupont a clôturé cette conversation",
            ],
            "agenda": ["Échographie du cœur", "Frottis de dépistage du col de l'utérus"],
            "profile": ["Lévothyrox 75 µg", "Hypothyroïdie", "Pénicillines"],
            "history": [
                "Document ajouté au dossier (Consultation de cardiologie)",
                "Rendez-vous ajouté à l'agenda",
                "Conversation clôturée par le professionnel",
                "Information ajoutée au profil médical",
            ],
        },
    )
    await page.get_by_role("button", name="Se déconnecter").click()
    await _sign_in(page, hub, demo_account(accounts, "patient (guardian)"))
    await _walk(
        page,
        "louis",
        {
            "dossier": ["Consultation de médecine générale", "Bilan lipidique"],
            "narrative": ["Traitement inchangé pour six mois."],
            "messages": ["Votre bilan lipidique"],
            "latest": ["je prendrai rendez-vous en mars."],
            "agenda": ["Consultation de cardiologie"],
            "profile": ["Amlodipine 5 mg", "Pollens de graminées"],
            "history": [
                "Document ajouté au dossier (Bilan lipidique)",
                "Rendez-vous ajouté à l'agenda",
                "Message reçu",
            ],
        },
    )
    await open_menu(page)
    await page.get_by_label("Espace affiché").select_option(label="Emma Petit")
    await page.get_by_role("button", name="Changer d'espace").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Espace d'Emma Petit")
    await _walk(
        page,
        "emma",
        {
            "dossier": ["Consultation de suivi de l'enfant", "Vaccinations à jour"],
            "narrative": ["Enfant en bonne santé."],
            "messages": ["Rappel de vaccin pour Emma", "conversation clôturée"],
            "latest": [
                "L'ordonnance vous attend à l'accueil du cabinet.",
                "Signature vérifiée",
                "Dr Jean Dupont a clôturé cette conversation",
            ],
            "agenda": [
                "Consultation de pédiatrie",
                "Rappel diphtérie, tétanos, coqueluche, polio",
            ],
            "profile": ["Arachide", "Rougeole, oreillons, rubéole"],
            "history": [
                "Document ajouté au dossier (Vaccinations à jour)",
                "Conversation clôturée par le professionnel",
                "Information ajoutée au profil médical",
            ],
        },
    )
