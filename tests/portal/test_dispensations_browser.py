"""The dispensation timeline and who wrote what in the profile, in Debian's Chromium on a phone
(390x844)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_authorisation
from dmp_bridge.dispensation import DISPENSATION_LABEL, DISPENSATION_TYPE, LOINC_OID
from dmp_bridge.dispensation_cda import DispensationParty, DispenseLine, build_dispensation
from dmp_bridge.documents import DocumentDraft, insert_document
from dmp_bridge.profile_access import record_profile_item
from mss.db import Database, utcnow
from mss.directory.models import Patient
from tests.portal.conftest import Hub, add_patient
from tests.portal.dossier_world import DOCTOR, add_professionals
from tests.portal.test_browser import INS, fits_the_phone, go_to, page, shot, sign_in

pytestmark = pytest.mark.browser
__all__ = ["page"]

PARIS = ZoneInfo("Europe/Paris")
NOVEMBER = dt.datetime(2026, 11, 20, 10, 30, tzinfo=PARIS)
OCTOBER = dt.datetime(2026, 10, 3, 17, 5, tzinfo=PARIS)


def _party(patient: Patient) -> DispensationParty:
    return DispensationParty(
        ins=patient.ins,
        family=patient.family_name.upper(),
        given=patient.given_names,
        birth_date=dt.date(1975, 1, 1),
        gender="F",
        pharmacist_id_nat="810003456786",
        pharmacist_family="BERNARD",
        pharmacist_given="Paul",
        pharmacy="Pharmacie du Centre",
        pharmacy_finess="750001232",
    )


async def _dispensations(db: Database, patient: Patient) -> None:
    """Two dispensations the patient sees, one hidden from her (INVISIBLE_PATIENT)."""
    sent = [
        (
            NOVEMBER,
            [
                (
                    "DOLIPRANE 1000 mg, comprimé",
                    "3400935955838",
                    2,
                    "boîtes",
                    "1 comprimé jusqu'à 3 fois par jour",
                ),
                ("SPASFON LYOC 80 mg", "3400934287006", 1, "boîte", "1 lyophilisat si douleur"),
            ],
            False,
        ),
        (
            OCTOBER,
            [
                (
                    "LÉVOTHYROX 75 microgrammes",
                    "3400936595996",
                    3,
                    "boîtes",
                    "1 comprimé le matin à jeun",
                )
            ],
            False,
        ),
        (OCTOBER, [("MÉDICAMENT CACHÉ", "3400000000000", 1, "boîte", "secret")], True),
    ]
    async with db.write() as session:
        for n, (moment, lines, hidden) in enumerate(sent, start=1):
            content = build_dispensation(
                _party(patient),
                [DispenseLine(m, c, Decimal(q), u, d, moment) for m, c, q, u, d in lines],
                document_root="1.2.250.1.999.9",
                document_extension=str(n),
                effective_time=moment,
            )
            await insert_document(
                session,
                patient,
                DocumentDraft(
                    content=content,
                    mime_type="text/xml",
                    title=f"{DISPENSATION_LABEL} {n}",
                    unique_id=f"1.2.250.1.999.9^{n}",
                    type_code=DISPENSATION_TYPE,
                    type_system=LOINC_OID,
                    type_label=DISPENSATION_LABEL,
                    author_id_nat="810003456786",
                    author_name="Paul BERNARD",
                    author_institution="Pharmacie du Centre",
                    creation_time=moment,
                    invisible_to_patient=hidden,
                ),
            )


async def _allergy_by_the_doctor(db: Database, patient: Patient) -> None:
    """Dr Dupont, authorised by the patient, records an allergy (the document API's path)."""
    professionals = await add_professionals(db)
    async with db.write() as session:
        patient = await session.merge(patient)
        await set_authorisation(session, Viewer.for_patient(patient), patient, DOCTOR)
        await record_profile_item(
            session,
            Viewer.for_professional(professionals[DOCTOR]),
            patient,
            category="allergy",
            label="Pénicillines",
            detail="Urticaire géante",
            when="2019",
            code="",
            code_system="",
            now=utcnow(),
        )


async def test_dispensation_timeline_and_profile_authorship(page: Page, hub: Hub) -> None:
    claire = await add_patient(hub.db, INS, "Martin", "Claire")
    await _dispensations(hub.db, claire)
    await _allergy_by_the_doctor(hub.db, claire)
    await sign_in(page, hub)

    await page.get_by_role("link", name="Mon dossier", exact=True).click()
    await page.get_by_role("link", name="Médicaments délivrés").click()
    await expect(
        page.get_by_role("heading", name="Médicaments délivrés en pharmacie")
    ).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("3 médicaments délivrés")
    items = page.locator(".dispensed")
    await expect(items).to_have_count(3)
    await expect(page.locator(".timeline-month h3")).to_have_text(["Novembre 2026", "Octobre 2026"])
    first = items.first
    await expect(first.locator(".medicine")).to_have_text("DOLIPRANE 1000 mg, comprimé")
    await expect(first).to_contain_text("Délivré le20/11/2026")
    await expect(first).to_contain_text("Quantité2 boîtes")
    await expect(first).to_contain_text("Posologie1 comprimé jusqu'à 3 fois par jour")
    await expect(first).to_contain_text("PharmaciePharmacie du Centre")
    await expect(items.nth(2)).to_contain_text("LÉVOTHYROX 75 microgrammes")
    await expect(page.locator("main")).not_to_contain_text("CACHÉ")  # INVISIBLE_PATIENT
    await fits_the_phone(page)
    await shot(page, "dossier-medicaments")
    await first.get_by_role("link", name="Voir le document de la pharmacie").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"{DISPENSATION_LABEL} 1")

    await go_to(page, "Profil médical")
    allergies = page.locator("section", has=page.get_by_role("heading", name="Allergies"))
    by_doctor = allergies.locator(".event", has_text="Pénicillines")
    today = utcnow().astimezone(PARIS).strftime("%d/%m/%Y")
    await expect(by_doctor.locator(".author")).to_have_text(
        f"Inscrit par Jean DUPONT, médecin (RPPS 10000000014), le {today}"
    )
    await allergies.get_by_text("Ajouter : allergie ou intolérance").click()
    await allergies.get_by_label("Allergie ou intolérance").fill("Arachide")
    await allergies.get_by_role("button", name="Ajouter").click()
    mine = page.locator(".event", has_text="Arachide")
    await expect(mine.locator(".author")).to_have_text(f"Ajouté par vous, le {today}")
    await fits_the_phone(page)
    await shot(page, "profil-auteurs")

    await go_to(page, "Historique des accès")
    await expect(
        page.locator(".event", has_text="Historique des médicaments délivrés en pharmacie consulté")
    ).to_have_count(1)
    await expect(
        page.locator(".event", has_text="Information ajoutée au profil médical").last
    ).to_contain_text("Jean DUPONT")
