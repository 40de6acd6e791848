"""The channel choice in "Compte" and grouped notices, in Chromium at 390x844.

Screenshots go to test-artifacts/screenshots/ (``avis-*``).
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, expect

from mss.jobs import JobRunner
from mss.notify import notify_patient, read_outbox, register_jobs
from mss.patients import find_patient_by_identifier
from mss.services import Services
from tests.portal.conftest import Hub, add_patient
from tests.portal.test_browser import INS, PHONE_NUMBER, fits_the_phone, go_to, page, shot, sign_in

pytestmark = pytest.mark.browser
__all__ = ["page"]


async def test_sms_only_then_three_convocations_make_one_sms(page: Page, hub: Hub) -> None:
    await add_patient(hub.db, INS, "Morel", "Yves", email="yves@example.org")
    await sign_in(page, hub)
    await go_to(page, "Compte")
    choice = page.get_by_role("group", name="Comment voulez-vous être prévenu ?")
    await expect(choice.get_by_label("Par e-mail et par SMS")).to_be_checked()
    await choice.get_by_label("Par SMS seulement").check()
    await fits_the_phone(page)
    await shot(page, "avis-01-choix")
    await page.get_by_role("button", name="Enregistrer ce choix").click()
    await expect(page.get_by_role("status")).to_contain_text("Votre choix est enregistré")
    await expect(choice.get_by_label("Par SMS seulement")).to_be_checked()

    hub.settings.notifications.group_seconds = 1.0
    async with hub.db.write() as session:
        yves = await find_patient_by_identifier(session, INS)
        assert yves is not None
        for _ in range(3):
            notify_patient(session, yves, "appointment", "/agenda")
    runner = JobRunner(hub.db, services=Services(hub.settings))
    register_jobs(runner)
    before = len(read_outbox(hub.settings))  # the login code
    await runner.run_once()
    await asyncio.sleep(1.2)
    await runner.run_once()
    sent = read_outbox(hub.settings)[before:]
    assert [(r["channel"], r["to"]) for r in sent] == [("sms", PHONE_NUMBER)]
    assert "(3 fois)" in sent[0]["text"]

    await go_to(page, "Historique des accès")
    await expect(page.locator(".event").first).to_contain_text(
        "Choix de recevoir les avis par e-mail ou par SMS modifié (SMS seulement)"
    )
    await expect(page.locator(".event").first).to_contain_text("Yves Morel (vous-même)")


async def test_an_unknown_channel_is_refused(page: Page, hub: Hub) -> None:
    await add_patient(hub.db, INS, "Morel", "Yves", email="yves@example.org")
    await sign_in(page, hub)
    await go_to(page, "Compte")
    await page.locator("#canaux-sms").evaluate("input => { input.value = 'pigeon'; }")
    await page.get_by_label("Par SMS seulement").check()
    await page.get_by_role("button", name="Enregistrer ce choix").click()
    await expect(page.get_by_role("alert")).to_contain_text("Choisissez comment recevoir les avis")
    await expect(page.get_by_label("Par e-mail et par SMS")).to_be_checked()  # nothing changed
