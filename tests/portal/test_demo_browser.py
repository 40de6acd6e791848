"""The demo data as a demo visitor sees it, in Chromium at 390x844: ``mss init --demo``, then
Marie Durand and Louis Petit (and his daughter Emma's space) log in with their e-mail.

Screenshots go to test-artifacts/screenshots/ (``demo-*``), with the others.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import undefer

from mss.agenda.models import Appointment
from mss.config import Settings
from mss.conversations import Conversation
from mss.db import Database, utcnow
from mss.demo import load_demo_accounts
from mss.directory.store import find_patient_by_ins
from mss.mailbox.models import StoredMessage
from mss.profile.store import profile_of
from mss.setup import describe_listeners, initialise
from tests.portal.conftest import Hub
from tests.portal.test_browser import fits_the_phone, last_code, open_menu, page, shot

pytestmark = pytest.mark.browser
__all__ = ["page"]


def _account(accounts: list[dict[str, Any]], role: str) -> dict[str, Any]:
    return next(a for a in accounts if a["role"] == role)


async def _demo(settings: Settings, db: Database) -> list[dict[str, Any]]:
    lines = await initialise(settings, demo=True)
    assert "demo record: 6 reports, 9 messages and 3 convocations for 3 patients" in lines
    return load_demo_accounts(settings)


async def test_the_demo_record_in_the_stores(hub: Hub) -> None:
    """What init left for each patient, read back from the stores (both engines)."""
    from dmp_bridge.cda import narrative_html
    from dmp_bridge.models import DmpDocument

    settings, db = hub.settings, hub.db
    accounts = await _demo(settings, db)
    banner = "\n".join(await describe_listeners(settings, db))
    for role in ("patient", "patient (guardian)", "patient (minor)"):
        account = _account(accounts, role)
        assert account["email"].endswith("@example.org")
        assert f"{account['ins']} or {account['email']}" in banner
    async with db.read() as session:
        for role in ("patient", "patient (guardian)", "patient (minor)"):
            patient = await find_patient_by_ins(session, _account(accounts, role)["ins"])
            assert patient is not None
            documents = (
                await session.scalars(
                    select(DmpDocument)
                    .where(DmpDocument.patient_id == patient.id, DmpDocument.type_code != "60593-1")
                    .options(undefer(DmpDocument.content), undefer(DmpDocument.pdf))
                )
            ).all()
            assert len(documents) == 2, role
            assert sum(d.has_pdf for d in documents) == 1
            for document in documents:
                assert document.pdf is None or document.pdf.startswith(b"%PDF-")
                narrative = narrative_html(document.content)
                assert "<h" in narrative and len(narrative) > 150, narrative
            appointments = (
                await session.scalars(
                    select(Appointment).where(Appointment.patient_id == patient.id)
                )
            ).all()
            assert len(appointments) == 1
            assert appointments[0].starts_at > utcnow() + dt.timedelta(days=7)
            profile = await profile_of(session, patient.id)
            assert sum(1 for items in profile.values() if items) >= 3, role
        closed = (
            await session.scalars(select(Conversation).where(Conversation.state == "closed"))
        ).all()
        assert len(closed) == 2  # Marie's with Dr Dupont, Emma's with Dr Dupont
        signed = (await session.scalars(select(StoredMessage.signature_status))).all()
        assert signed.count("valid") >= 8, signed


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
    await expect(page.get_by_role("link", name="Télécharger le PDF")).to_be_visible()
    await shot(page, f"demo-{who}-02-document")
    await _nav(page, "Messages")
    for subject in expected["messages"]:
        await expect(page.locator("main")).to_contain_text(subject)
    await shot(page, f"demo-{who}-03-messages")
    await page.get_by_role("link", name=expected["messages"][0]).first.click()
    await expect(page.locator("main")).to_contain_text(expected["latest"][0])
    await shot(page, f"demo-{who}-04-message")
    await _nav(page, "Agenda")
    await expect(page.locator("main")).to_contain_text(expected["agenda"][0])
    await shot(page, f"demo-{who}-05-agenda")
    await _nav(page, "Profil médical")
    for label in expected["profile"]:
        await expect(page.locator("main")).to_contain_text(label)
    await shot(page, f"demo-{who}-06-profil")
    await _nav(page, "Historique des accès")
    lines = page.locator("main li")
    assert await lines.count() >= 5
    await shot(page, f"demo-{who}-07-historique")


async def test_marie_and_louis_with_emma_see_their_demo_data(page: Page, hub: Hub) -> None:
    accounts = await _demo(hub.settings, hub.db)
    await _sign_in(page, hub, _account(accounts, "patient"))
    await _walk(
        page,
        "marie",
        {
            "dossier": ["Consultation de cardiologie", "Bilan sanguin"],
            "narrative": ["Palpitations bénignes, sans maladie du cœur."],
            "messages": ["Résultats de votre bilan sanguin", "Votre échographie du cœur"],
            "latest": ["Nous referons le point dans six mois."],
            "agenda": ["Rendez-vous Cardiologie"],
            "profile": ["Lévothyrox 75 µg", "Hypothyroïdie", "Pénicillines"],
        },
    )
    await page.get_by_role("button", name="Se déconnecter").click()
    await _sign_in(page, hub, _account(accounts, "patient (guardian)"))
    await _walk(
        page,
        "louis",
        {
            "dossier": ["Consultation de médecine générale", "Bilan lipidique"],
            "narrative": ["Traitement inchangé pour six mois."],
            "messages": ["Votre bilan lipidique"],
            "latest": ["je prendrai rendez-vous en mars."],
            "agenda": ["Rendez-vous Cardiologie"],
            "profile": ["Amlodipine 5 mg", "Pollens de graminées"],
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
            "messages": ["Rappel de vaccin pour Emma"],
            "latest": ["L'ordonnance vous attend à l'accueil du cabinet."],
            "agenda": ["Rendez-vous Pédiatrie"],
            "profile": ["Arachide", "Rougeole, oreillons, rubéole"],
        },
    )
