"""The agenda and the medical profile in Debian's Chromium on a phone (390x844)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect
from pypdf import PdfReader

from tests.agenda.conftest import APP, INS, PASSWORD, PATIENT_PHONE, AgendaHub, PortalHub
from tests.portal.test_browser import fits_the_phone, go_to, phone_page, shot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
async def phone(portal: PortalHub) -> AsyncIterator[Page]:
    async with phone_page(str(portal.client.make_url("/"))) as opened:
        yield opened


async def test_agenda_answer_download_and_own_entries(
    phone: Page, agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await agenda_hub.convoke(agenda_hub.row())
    await sign_in(phone, portal, INS, PASSWORD, PATIENT_PHONE)
    await phone.get_by_role("link", name="Agenda", exact=True).click()
    await expect(phone.get_by_role("heading", level=1)).to_have_text("Mon agenda")
    upcoming = phone.get_by_role("region", name="Rendez-vous à venir")
    await expect(upcoming).to_contain_text("Rendez-vous Cardiologie")
    await expect(upcoming).to_contain_text("En attente de votre réponse")
    await fits_the_phone(phone)
    await shot(phone, "agenda")

    await upcoming.get_by_role("link", name="Rendez-vous Cardiologie").click()
    await expect(phone.get_by_text("CHU, bâtiment B")).to_be_visible()
    # The organiser as the directory names the hospital, not its applicative address.
    await expect(phone.locator("dt:text('Organisé par') + dd")).to_have_text("CHU de Test")
    await expect(phone.get_by_role("main")).not_to_contain_text(APP)
    async with phone.expect_download() as info:
        await phone.get_by_role("link", name="Télécharger pour mon calendrier (.ics)").click()
    download = await info.value
    assert download.suggested_filename == "rendez-vous.ics"
    await fits_the_phone(phone)
    await shot(phone, "agenda-rendez-vous")
    await phone.get_by_role("button", name="J'accepte ce rendez-vous").click()
    await expect(phone.get_by_role("status")).to_contain_text("« j'accepte » a été envoyée")
    await expect(upcoming).to_contain_text("Vous avez accepté")
    [reply] = await agenda_hub.stored(APP)
    assert b"PARTSTAT=ACCEPTED" in bytes(reply.raw).replace(b"\r\n ", b"")

    form = phone.get_by_role("region", name="Ajouter un rendez-vous")
    await form.get_by_label("Objet").fill("Dentiste")
    await form.get_by_label("Date").fill("2030-05-06")
    await form.get_by_label("Heure de début").fill("14:30")
    await form.get_by_label("Lieu (facultatif)").fill("Cabinet du Dr Roux")
    await form.get_by_role("button", name="Ajouter le rendez-vous").click()
    await expect(phone.get_by_role("status")).to_contain_text("Le rendez-vous est ajouté")
    await expect(upcoming).to_contain_text("le 06/05/2030 à 14 h 30 · Cabinet du Dr Roux")

    reminders = phone.get_by_role("region", name="Rappels de vaccination et de dépistage")
    await reminders.get_by_label("Type").select_option("screening")
    await reminders.get_by_label("Nom").fill("Mammographie")
    await reminders.get_by_label("Date d'échéance").fill("2031-01-15")
    await reminders.get_by_role("button", name="Enregistrer le rappel").click()
    await expect(reminders).to_contain_text("Dépistage : Mammographie")
    await expect(reminders).to_contain_text("Échéance le 15/01/2031")
    await fits_the_phone(phone)
    await shot(phone, "agenda-complet")


async def test_profile_entries_and_pdf(
    phone: Page, agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await sign_in(phone, portal, INS, PASSWORD, PATIENT_PHONE)
    await go_to(phone, "Profil médical")
    await expect(phone.get_by_role("heading", level=1)).to_have_text("Mon profil médical")
    allergies = phone.get_by_role("region", name="Allergies")
    await allergies.get_by_text("Ajouter : allergie ou intolérance").click()
    await allergies.get_by_label("Allergie ou intolérance").fill("Pénicilline")
    await allergies.get_by_label("Précisions (facultatif)").fill("Urticaire")
    await allergies.get_by_role("button", name="Ajouter").click()
    await expect(phone.get_by_role("status")).to_contain_text("L'information est ajoutée")
    await expect(phone.get_by_role("region", name="Allergies")).to_contain_text("Pénicilline")
    treatments = phone.get_by_role("region", name="Traitements en cours")
    await treatments.get_by_text("Ajouter : médicament ou traitement").click()
    await treatments.get_by_label("Médicament ou traitement").fill("Metformine 500 mg")
    await treatments.get_by_role("button", name="Ajouter").click()
    await expect(phone.get_by_role("region", name="Traitements en cours")).to_contain_text(
        "Metformine 500 mg"
    )
    await fits_the_phone(phone)
    await shot(phone, "profil")
    async with phone.expect_download() as info:
        await phone.get_by_role("link", name="Télécharger le résumé (PDF)").click()
    download = await info.value
    assert download.suggested_filename == "profil-medical.pdf"
    path = await download.path()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(path.read_bytes())).pages)
    assert "• Pénicilline" in text and "Urticaire" in text and "• Metformine 500 mg" in text
