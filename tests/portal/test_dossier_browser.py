""" "Mon dossier" in Debian's Chromium on a phone (390x844): documents, a CDA and its PDF, masking,
adding a document, consent choices, and the access history that shows them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from dmp_bridge.access import DmpRefused
from tests.portal.conftest import Hub, add_patient
from tests.portal.dossier_world import (
    NURSE,
    REASON,
    TITLES,
    add_professionals,
    file_documents,
    professional_finds,
)
from tests.portal.test_browser import INS, fits_the_phone, go_to, page, shot, sign_in
from tests.xdm_factory import PDF

pytestmark = pytest.mark.browser
__all__ = ["page"]  # the fixture, shared with the portal's other browser tests


async def _claire(hub: Hub) -> int:
    await add_professionals(hub.db)
    claire = await add_patient(hub.db, INS, "Martin", "Claire")
    await file_documents(hub.db, claire)
    return claire.id


async def test_documents_a_cda_its_pdf_and_masking(page: Page, hub: Hub, tmp_path: Path) -> None:
    await _claire(hub)
    await sign_in(page, hub)
    await page.get_by_role("link", name="Mon dossier", exact=True).click()
    await expect(page.get_by_role("heading", name="Mon dossier médical")).to_be_visible()
    documents = page.locator(".document")
    await expect(documents).to_have_count(4)
    await expect(documents.first).to_contain_text("Dr Marc LEFEBVRE, médecin · Hôpital Saint-Louis")
    await fits_the_phone(page)
    await shot(page, "dossier-01-documents")
    await page.get_by_label("Type de document").select_option(
        label="Compte rendu d'examens biologiques"
    )
    await page.get_by_role("button", name="Afficher").click()
    await expect(documents).to_have_count(1)
    await expect(documents).to_contain_text(TITLES["biology"])
    await page.get_by_label("Type de document").select_option(label="Tous les types (4)")
    await page.get_by_role("button", name="Afficher").click()
    await page.get_by_role("link", name=TITLES["plain"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(TITLES["plain"])
    narrative = page.locator(".narrative-body")
    await expect(narrative).to_contain_text("Patiente vue en consultation.")
    await expect(narrative.locator("strong")).to_have_text("Pas de fièvre")
    await fits_the_phone(page)
    await shot(page, "dossier-02-document-cda")
    async with page.expect_download() as started:
        await page.get_by_role("link", name="Télécharger le PDF").click()
    download = await started.value
    assert (
        download.suggested_filename == "Compte rendu de consultation du 15 janvier.pdf"
    )  # filename*
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert saved.read_bytes() == PDF
    await page.get_by_role("button", name="Masquer aux professionnels").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Le document est masqué aux professionnels"
    )
    await expect(
        page.get_by_role("button", name="Rendre visible aux professionnels")
    ).to_be_visible()
    await shot(page, "dossier-03-document-masque")
    await page.get_by_role("link", name="Retour aux documents").click()
    await expect(page.locator(".document", has_text=TITLES["plain"])).to_contain_text(
        "Masqué aux professionnels"
    )


async def test_add_a_document_of_my_own(page: Page, hub: Hub) -> None:
    await _claire(hub)
    await sign_in(page, hub)
    await page.goto("/dossier")
    await page.get_by_role("link", name="Ajouter un document").click()
    await page.get_by_label("Fichier").set_input_files(
        {
            "name": "ordonnance.pdf",
            "mimeType": "application/pdf",
            "buffer": b"<html>pas un PDF</html>",
        }
    )
    await page.get_by_label("Titre").fill("Ordonnance du Dr Martin")
    await page.get_by_label("Type de document").select_option(label="Ordonnance")
    await page.get_by_role("button", name="Ajouter au dossier").click()
    await expect(page.get_by_role("alert")).to_contain_text("ce n'est pas un vrai PDF")
    await expect(page.get_by_label("Titre")).to_have_value("Ordonnance du Dr Martin")
    await page.get_by_label("Fichier").set_input_files(
        {"name": "ordonnance.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    await fits_the_phone(page)
    await shot(page, "dossier-04-ajouter")
    await page.get_by_role("button", name="Ajouter au dossier").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Le document est ajouté à votre dossier."
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ordonnance du Dr Martin")
    await expect(page.locator(".facts")).to_contain_text("Claire Martin, depuis l'espace patient")
    await page.get_by_role("link", name="Documents", exact=True).click()
    await expect(page.locator(".document").first).to_contain_text("Ordonnance du Dr Martin")


async def test_consent_choices_and_the_access_history(page: Page, hub: Hub) -> None:
    claire_id = await _claire(hub)
    await sign_in(page, hub)
    await page.goto("/dossier")
    await page.get_by_role("link", name="Qui peut voir mon dossier").click()
    search = page.get_by_label("Nom ou numéro RPPS")
    await search.fill("dupont")
    await page.get_by_role("button", name="Chercher").click()
    await page.get_by_role("button", name="Autoriser : Jean DUPONT").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Jean DUPONT peut maintenant consulter le dossier."
    )
    await page.get_by_role("button", name="Désigner médecin traitant : Jean DUPONT").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Jean DUPONT est désigné médecin traitant"
    )
    await search.fill("10000000021")  # Élodie BERNARD's RPPS
    await page.get_by_role("button", name="Chercher").click()
    await page.get_by_role("button", name="Bloquer : Élodie BERNARD").click()
    await expect(page.get_by_role("status")).to_contain_text("Élodie BERNARD est bloqué")
    await page.get_by_role("button", name="M'opposer à l'accès en urgence").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Votre opposition à l'accès en urgence est enregistrée"
    )
    await expect(
        page.locator("section", has=page.get_by_role("heading", name="Médecin traitant"))
    ).to_contain_text("Jean DUPONT")
    await expect(
        page.locator("section", has=page.get_by_role("heading", name="Professionnels bloqués"))
    ).to_contain_text("Élodie BERNARD")
    await fits_the_phone(page)
    await shot(page, "dossier-05-acces")
    with pytest.raises(DmpRefused):  # blocked, and break-glass was opposed anyway
        await professional_finds(hub.db, claire_id, NURSE, REASON)
    await go_to(page, "Historique des accès")
    await page.get_by_label("Type").select_option(label="Consentements")
    await page.get_by_role("button", name="Filtrer").click()
    for change in (
        "professionnel autorisé, Jean DUPONT, médecin, RPPS 10000000014",
        "médecin traitant désigné, Jean DUPONT, médecin, RPPS 10000000014",
        "professionnel bloqué, Élodie BERNARD, infirmier, RPPS 10000000021",
        "opposition à l'accès en urgence",
    ):
        await expect(
            page.locator(".event .what", has_text=re.compile(re.escape(change)))
        ).to_have_count(1)
    await expect(page.locator(".event").first).to_contain_text("Claire Martin (vous-même)")
    await fits_the_phone(page)
    await shot(page, "dossier-06-historique")
    await page.get_by_label("Type").select_option(label="Accès à vos données")
    await page.get_by_role("button", name="Filtrer").click()
    await expect(page.locator(".event .what", has_text="Accès à un document refusé")).to_have_count(
        1
    )
    await expect(page.locator(".event", has_text="Accès à un document refusé")).to_contain_text(
        "Élodie BERNARD (infirmier)"
    )
