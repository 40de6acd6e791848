"""The changes of mind in Debian's Chromium at 390x844: activation without the letter,
activation after an opposition, reopening after a closing (screenshots in
test-artifacts/screenshots/)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from mss.db import Database
from mss.directory.models import Patient, PatientState
from tests.portal.conftest import PASSWORD, Hub, add_patient
from tests.portal.test_browser import (
    INS,
    PHONE_NUMBER,
    fits_the_phone,
    last_code,
    phone_page,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser
NEW_PASSWORD = "ma nouvelle phrase 7"


@pytest.fixture
async def page(hub: Hub) -> AsyncIterator[Page]:
    async with phone_page(str(hub.client.make_url("/"))) as opened:
        yield opened


async def _born(db: Database, patient: Patient) -> None:
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.birth_date = dt.date(1985, 3, 12)


async def _prove_identity(page: Page, hub: Hub, birth_date: str = "12/03/1985") -> None:
    await page.goto("/activation")
    await page.get_by_role("link", name="Je n'ai pas le courrier").click()
    await expect(page.get_by_role("heading", name="Activer sans le courrier")).to_be_visible()
    await fits_the_phone(page)
    await page.get_by_label("Numéro INS").fill(INS)
    await page.get_by_label("Date de naissance").fill(birth_date)
    await page.get_by_role("button", name="Recevoir un code").click()


async def _choose_password(page: Page, hub: Hub) -> None:
    await page.get_by_label("Code reçu").fill(last_code(hub, PHONE_NUMBER))
    await page.get_by_label("Choisissez un mot de passe").fill(NEW_PASSWORD)
    await page.get_by_label("Saisissez-le une seconde fois").fill(NEW_PASSWORD)


async def test_activation_without_the_letter(page: Page, hub: Hub) -> None:
    patient = await add_patient(
        hub.db, INS, "Martin", "Claire", state=PatientState.OPPOSITION_WINDOW, password=False
    )
    await _born(hub.db, patient)
    await _prove_identity(page, hub, birth_date="13/03/1985")  # a wrong birth date
    await expect(page.get_by_role("alert")).to_contain_text(
        "Ce numéro INS et cette date de naissance ne correspondent à aucun compte."
    )
    await shot(page, "20-activation-sans-courrier-refus")
    hub.clock.advance(seconds=3)  # past the throttle's back-off
    await page.get_by_label("Date de naissance").fill("12/03/1985")
    await page.get_by_role("button", name="Recevoir un code").click()
    await expect(page.get_by_text("par SMS au •• •• •• 78")).to_be_visible()
    await fits_the_phone(page)
    await shot(page, "21-activation-sans-courrier-code")
    await _choose_password(page, hub)
    await page.get_by_role("button", name="Activer mon compte").click()
    await expect(page.get_by_role("heading", name="Compte activé")).to_be_visible()
    await sign_in(page, hub, password=NEW_PASSWORD)


async def test_activate_after_opposing(page: Page, hub: Hub) -> None:
    patient = await add_patient(
        hub.db, INS, "Martin", "Claire", state=PatientState.OPPOSED, password=False
    )
    await _born(hub.db, patient)
    await _prove_identity(page, hub)
    await expect(page.get_by_text("Vous vous étiez opposé à la création")).to_be_visible()
    await _choose_password(page, hub)
    await page.get_by_role("button", name="Activer mon compte").click()  # box not ticked
    await expect(page.get_by_role("alert")).to_contain_text("Cochez la case")
    await page.get_by_label("Code reçu").fill(last_code(hub, PHONE_NUMBER))
    await page.get_by_label("Choisissez un mot de passe").fill(NEW_PASSWORD)
    await page.get_by_label("Saisissez-le une seconde fois").fill(NEW_PASSWORD)
    await page.get_by_label("Je retire mon opposition et j'active mon compte.").check()
    await fits_the_phone(page)
    await shot(page, "22-retirer-opposition")
    await page.get_by_role("button", name="Activer mon compte").click()
    await expect(
        page.get_by_role("heading", name="Opposition retirée, compte activé")
    ).to_be_visible()
    await sign_in(page, hub, password=NEW_PASSWORD)


async def test_reopen_after_closing(page: Page, hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    await _born(hub.db, patient)
    await sign_in(page, hub)
    await page.goto("/compte/cloturer")
    await expect(page.get_by_text("vous pourrez le rouvrir pendant 90 jours")).to_be_visible()
    await page.get_by_label("J'ai compris").check()
    await page.get_by_label("Votre mot de passe, pour confirmer").fill(PASSWORD)
    await page.get_by_role("button", name="Confirmer : clôturer le compte").click()
    await expect(page.get_by_role("heading", name="Compte clôturé")).to_be_visible()
    await page.get_by_role("link", name="Activer sans le courrier").click()
    await page.get_by_label("Numéro INS").fill(INS)
    await page.get_by_label("Date de naissance").fill("12/03/1985")
    await page.get_by_role("button", name="Recevoir un code").click()
    await expect(page.get_by_text("Vous pouvez le rouvrir jusqu'au")).to_be_visible()
    await _choose_password(page, hub)
    await page.get_by_label("Je rouvre mon compte.").check()
    await fits_the_phone(page)
    await shot(page, "23-rouvrir-compte")
    await page.get_by_role("button", name="Rouvrir mon compte").click()
    await expect(page.get_by_role("heading", name="Compte rouvert")).to_be_visible()
    await sign_in(page, hub, password=NEW_PASSWORD)
    async with hub.db.read() as session:
        fresh = await session.get(Patient, patient.id)
    assert fresh is not None and fresh.state is PatientState.ACTIVE and fresh.closed_at is None
