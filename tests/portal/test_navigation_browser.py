"""The phone navigation, the child's space in French, and the help page, in Chromium at 390x844.

Screenshots go to test-artifacts/screenshots/ (``nav-*``), with the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.portal.conftest import Hub, add_guardianship, add_patient
from tests.portal.test_browser import INS, SHOTS, fits_the_phone, open_menu, page, shot, sign_in

pytestmark = pytest.mark.browser
__all__ = ["page"]

CHILD_INS = "201751234566294"


async def _bar_rows(page: Page) -> int:
    """How many lines the navigation bar's items take."""
    tops = await page.locator("nav.site-nav .menu > li").evaluate_all(
        "items => items.map(i => Math.round(i.getBoundingClientRect().top))"
    )
    return len(set(tops))


async def test_phone_bar_menu_and_the_child_space(page: Page, hub: Hub) -> None:
    parent = await add_patient(hub.db, INS, "Petit", "Claire")
    child = await add_patient(hub.db, CHILD_INS, "Petit", "Emma", phone=None, password=False)
    await add_guardianship(hub.db, parent, child)
    await sign_in(page, hub)
    # One line of five items, fixed at the bottom of the screen, each a thumb's size.
    assert await _bar_rows(page) == 1
    bar = await page.locator("nav.site-nav").bounding_box()
    assert bar is not None and bar["y"] + bar["height"] == pytest.approx(844, abs=1)
    assert bar["height"] < 70
    for name in ("Accueil", "Messages", "Mon dossier", "Agenda"):
        link = page.locator("nav.site-nav").get_by_role("link", name=name, exact=True)
        box = await link.bounding_box()
        assert box is not None and box["height"] >= 44
    await expect(page.locator("#menu-plus-liste")).to_be_hidden()
    await open_menu(page)
    await fits_the_phone(page)
    await page.screenshot(path=str(_shots() / "nav-01-menu-ouvert.png"))
    await expect(page.locator("#menu-plus-liste").get_by_role("link")).to_have_count(6)
    await page.get_by_label("Espace affiché").select_option(label="Emma Petit")
    await page.get_by_role("button", name="Changer d'espace").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Espace d'Emma Petit")
    await page.locator("nav.site-nav").get_by_role("link", name="Messages", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Messages d'Emma Petit")
    await expect(page.locator(".empty")).to_contain_text("Emma n'a encore reçu aucun message")
    await shot(page, "nav-02-messages-enfant-vide")
    await page.locator("nav.site-nav").get_by_role("link", name="Mon dossier", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dossier médical d'Emma Petit")
    # The help page, from the menu, with the menu still there.
    await open_menu(page)
    await page.locator("#menu-plus-liste").get_by_role("link", name="Aide et contact").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Aide")
    await expect(page.locator("#menu-plus > summary")).to_have_class("current")
    await fits_the_phone(page)
    await shot(page, "nav-03-aide")


async def test_help_is_linked_before_signing_in_and_desktop_keeps_one_bar(
    page: Page, hub: Hub
) -> None:
    await add_patient(hub.db, INS, "Martin", "Olivier")
    await page.goto("/connexion")
    await page.get_by_role("link", name="Aide : se connecter").click()
    await expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()
    await expect(page.locator("nav.site-nav")).to_have_count(0)  # nobody signed in: no menu
    await sign_in(page, hub)
    await page.set_viewport_size(ViewportSize(width=1280, height=800))
    assert await _bar_rows(page) == 1
    bar = await page.locator("nav.site-nav").bounding_box()
    assert bar is not None and bar["y"] < 200  # under the header, not at the bottom
    await open_menu(page)
    await page.locator("#menu-plus-liste").get_by_role("link", name="Compte").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Compte")
    await page.screenshot(path=str(_shots() / "nav-04-bureau.png"))


def _shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
