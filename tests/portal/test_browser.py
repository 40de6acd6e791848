"""The portal in Debian's Chromium, in a phone-sized window (390x844), over TLS on loopback.

Playwright's async API runs in the test's event loop, next to the real HTTPS
app of the ``hub`` fixture (same database, same clock). Screenshots of the
main pages go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, async_playwright, expect

from mss.directory.models import Patient, PatientState
from mss.notify import read_outbox
from mss.patients import issue_letters
from tests.portal.conftest import PASSWORD, Hub, add_guardianship, add_patient

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
INS, PHONE_NUMBER = "201751234566195", "+33612345678"


@contextlib.asynccontextmanager
async def phone_page(base_url: str) -> AsyncIterator[Page]:
    """A page of Debian's Chromium in a phone-sized window; any CSP violation fails the test."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = await browser.new_context(
            viewport=ViewportSize(width=PHONE["width"], height=PHONE["height"]),
            ignore_https_errors=True,
            locale="fr-FR",
            base_url=base_url.rstrip("/"),
            is_mobile=True,
            has_touch=True,
            accept_downloads=True,
        )
        page = await context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        try:
            yield page
        finally:
            await context.close()
            await browser.close()
    assert violations == [], f"CSP violations: {violations}"


@pytest.fixture
async def page(hub: Hub) -> AsyncIterator[Page]:
    async with phone_page(str(hub.client.make_url("/"))) as opened:
        yield opened


# A whole-page picture would paint the bar fixed at the bottom of the screen over the middle of
# the page; during the screenshot it sits at the page's end, where the phone shows it once
# scrolled down (set through the CSSOM, which the page's CSP allows, unlike a <style>).
_BAR_AT_THE_END = """(on) => {
    const bar = document.querySelector('.site-nav');
    if (!bar) { return; }
    document.body.style.position = on ? 'relative' : '';
    bar.style.position = on ? 'absolute' : '';
}"""


async def shot(page: Page, name: str) -> None:
    """The whole page, kept in test-artifacts/screenshots/ for a reviewer to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate(_BAR_AT_THE_END, True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    await page.evaluate(_BAR_AT_THE_END, False)


async def fits_the_phone(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways ({width}px wide)"


async def open_menu(page: Page) -> None:
    """Open the navigation's "Menu" (the pages beyond the bar, and the space switcher)."""
    menu = page.locator("#menu-plus")
    if await menu.get_attribute("open") is None:
        await page.locator("#menu-plus > summary").click()
    await expect(page.locator("#menu-plus-liste")).to_be_visible()


async def go_to(page: Page, name: str) -> None:
    """Follow a link of the navigation by its name, through the menu when it is there."""
    await open_menu(page)
    await page.locator("#menu-plus-liste").get_by_role("link", name=name, exact=True).click()


def last_code(hub: Hub, to: str) -> str:
    texts = [r["text"] for r in read_outbox(hub.settings) if r["to"] == to]
    found = re.search(r"\b(\d{6})\b", texts[-1])
    assert found
    return found.group(1)


async def sign_in(
    page: Page, hub: Hub, identifier: str = INS, password: str = PASSWORD, phone: str = PHONE_NUMBER
) -> None:
    await page.goto("/connexion")
    await page.get_by_label("Identifiant").fill(identifier)
    await page.get_by_label("Mot de passe").fill(password)
    await page.get_by_role("button", name="Continuer").click()
    await expect(page.get_by_role("heading", name="Code de connexion")).to_be_visible()
    await page.get_by_label("Code à 6 chiffres").fill(last_code(hub, phone))
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")


async def test_login_with_the_sms_code(page: Page, hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await page.goto("/connexion")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()
    await fits_the_phone(page)
    await shot(page, "01-connexion")
    await page.get_by_label("Identifiant").fill(INS)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    await expect(page.get_by_text("par SMS au •• •• •• 78")).to_be_visible()
    await shot(page, "02-code-sms")
    await page.get_by_label("Code à 6 chiffres").fill(last_code(hub, PHONE_NUMBER))
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_role("heading", name="Bonjour Claire")).to_be_visible()
    await expect(page.get_by_text("Actif", exact=True)).to_be_visible()
    await fits_the_phone(page)
    await shot(page, "03-accueil")


async def test_failed_codes_then_lock(page: Page, hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await page.goto("/connexion")
    await page.get_by_label("Identifiant").fill(INS)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    good = last_code(hub, PHONE_NUMBER)
    wrong = "000000" if good != "000000" else "111111"
    for _attempt in range(5):
        hub.clock.advance(seconds=20)  # past each back-off
        await page.get_by_label("Code à 6 chiffres").fill(wrong)
        await page.get_by_role("button", name="Se connecter").click()
        await expect(page.get_by_role("alert")).to_contain_text("Ce code n'est pas le bon")
    await expect(page.get_by_role("alert")).to_contain_text("bloquée pendant 15 minutes")
    await shot(page, "04-code-verrouille")
    await page.get_by_label("Code à 6 chiffres").fill(good)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_role("alert")).to_contain_text("bloquée")


async def test_inactivity_warning_then_logout(page: Page, hub: Hub) -> None:
    hub.settings.portal.session_idle_minutes = 1
    await add_patient(hub.db, INS, "Martin", "Claire")
    await page.clock.install()
    await sign_in(page, hub)
    warning = page.get_by_role("alertdialog", name="Vous êtes toujours là ?")
    await expect(warning).to_be_hidden()
    await page.clock.fast_forward("00:31")
    await expect(warning).to_be_visible()
    await expect(page.get_by_role("button", name="Rester connecté")).to_be_focused()
    await shot(page, "05-avertissement-inactivite")
    hub.clock.advance(seconds=31)
    await page.get_by_role("button", name="Rester connecté").click()  # the session lives on
    await expect(page.get_by_role("heading", name="Bonjour Claire")).to_be_visible()
    await expect(warning).to_be_hidden()
    hub.clock.advance(seconds=62)
    await page.clock.fast_forward("01:02")
    await expect(page.get_by_role("heading", name="Session terminée")).to_be_visible()
    await shot(page, "06-session-terminee")
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/connexion$"))


async def test_guardian_switches_to_the_minor(page: Page, hub: Hub) -> None:
    parent = await add_patient(hub.db, INS, "Leroy", "Sophie")
    child = await add_patient(hub.db, "101751234566247", "Leroy", "Léo", phone=None, password=False)
    await add_guardianship(hub.db, parent, child)
    await sign_in(page, hub)
    await open_menu(page)
    await page.get_by_label("Espace affiché").select_option(label="Léo Leroy")
    await page.get_by_role("button", name="Changer d'espace").click()
    await expect(page.get_by_role("heading", name="Espace de Léo Leroy")).to_be_visible()
    await expect(page.get_by_role("status").filter(has_text="Vous agissez pour")).to_contain_text(
        "Léo Leroy"
    )
    await fits_the_phone(page)
    await shot(page, "07-espace-mineur")
    await go_to(page, "Historique des accès")
    event = page.locator(".event").filter(has_text="Ouverture de l'espace")
    await expect(event).to_contain_text("Sophie Leroy (représentant légal)")
    await expect(event).to_contain_text("127.0.0.1")
    await shot(page, "08-historique-mineur")


async def _codes(hub: Hub) -> dict[str, str]:
    codes: dict[str, str] = {}

    async def keep(patient: Patient, code: str) -> None:
        codes[patient.ins] = code

    await issue_letters(hub.db, hub.settings, keep)
    return codes


async def test_activation_and_opposition_with_the_code(page: Page, hub: Hub) -> None:
    await add_patient(hub.db, INS, "Blanc", "Emma", state=PatientState.CREATED, password=False)
    await add_patient(
        hub.db, "101751234566346", "Blanc", "Hugo", state=PatientState.CREATED, password=False
    )
    codes = await _codes(hub)
    new_password = "le jardin fleurit en 2026"
    await page.goto("/activation")
    await page.get_by_label("Numéro INS").fill(INS)
    await page.get_by_label("Code d'activation").fill(codes[INS])
    await page.get_by_label("Choisissez un mot de passe").fill("court")
    await page.get_by_label("Saisissez-le une seconde fois").fill("court")
    await page.get_by_role("button", name="Activer mon compte").click()
    await expect(page.get_by_role("alert")).to_contain_text("il en faut au moins 12")
    await page.get_by_label("Code d'activation").fill(codes[INS])
    await page.get_by_label("Choisissez un mot de passe").fill(new_password)
    await page.get_by_label("Saisissez-le une seconde fois").fill(new_password)
    await fits_the_phone(page)
    await shot(page, "09-activation")
    await page.get_by_role("button", name="Activer mon compte").click()
    await expect(page.get_by_role("status")).to_contain_text("Votre compte est activé")
    await sign_in(page, hub, password=new_password)
    await go_to(page, "Historique des accès")
    await expect(page.locator(".event").filter(has_text="Compte activé")).to_contain_text(
        "Emma Blanc (vous-même)"
    )
    await page.get_by_role("button", name="Se déconnecter").click()
    await page.goto("/opposition")
    await page.get_by_label("Numéro INS").fill("101751234566346")
    await page.get_by_label("Code d'activation").fill(codes["101751234566346"])
    await page.get_by_label("Je ne souhaite pas de compte de messagerie santé.").check()
    await shot(page, "10-opposition")
    await page.get_by_role("button", name="Enregistrer mon opposition").click()
    await expect(page.get_by_role("status")).to_contain_text("Votre opposition est enregistrée")


async def test_forged_post_is_refused_and_history_shows_each_act(page: Page, hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await page.goto("/connexion")
    await page.get_by_label("Identifiant").fill(INS)
    await page.get_by_label("Mot de passe").fill("pas le bon")
    await page.get_by_role("button", name="Continuer").click()
    await expect(page.get_by_role("alert")).to_contain_text("Identifiant ou mot de passe incorrect")
    hub.clock.advance(seconds=5)
    await sign_in(page, hub)
    await page.evaluate("""() => {
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/compte/desactiver';
        document.body.appendChild(form); form.submit();
    }""")
    await expect(page.get_by_role("heading", name="Requête refusée")).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("jeton de sécurité manque ou a expiré")
    await shot(page, "11-formulaire-refuse")
    await page.goto("/compte")
    await expect(page.get_by_text("Actif", exact=True)).to_be_visible()  # nothing changed
    await page.get_by_role("link", name="Désactiver le compte").click()
    await page.get_by_role("button", name="Confirmer : désactiver le compte").click()
    await expect(page.get_by_role("status")).to_contain_text("Le compte est désactivé")
    await go_to(page, "Historique des accès")
    for label in ("Connexion", "Échec de connexion", "Compte désactivé"):
        await expect(
            page.locator(".event .what", has_text=re.compile(f"^{label}"))
        ).not_to_have_count(0)
    await page.get_by_label("Type").select_option(label="Connexions")
    await page.get_by_role("button", name="Filtrer").click()
    await expect(page.locator(".event")).to_have_count(2)
    await expect(page.locator(".event").first).to_contain_text("127.0.0.1")
    await fits_the_phone(page)
    await shot(page, "12-historique")
