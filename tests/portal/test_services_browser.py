"""The catalogue's whole loop in Debian's Chromium on a phone (390x844): browse the catalogue,
connect the demo weight log (authorization code + PKCE), choose the permissions (documents,
profile and agenda unticked), the service posts a weight, the patient sees it, revokes it,
and the service's next call gets 401."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from examples.weight_log import WeightLog, build_app
from tests.portal.conftest import Hub, add_patient
from tests.portal.service_flow import register
from tests.portal.test_browser import INS, fits_the_phone, go_to, page, shot, sign_in

pytestmark = pytest.mark.browser
__all__ = ["page"]


@pytest.fixture
async def weight_log(hub: Hub) -> AsyncIterator[tuple[WeightLog, str]]:
    """The demo service on http://127.0.0.1:<free port>, registered and referenced."""
    log = WeightLog(str(hub.client.make_url("")).rstrip("/"), "", ssl_context=False)
    runner = web.AppRunner(build_app(log), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    log.redirect_uri = f"{base}/retour"
    log.scope = f"{log.scope} profile:read agenda:read"  # every kind of scope on the page
    await register(
        hub.db, client_id=log.client_id, redirect=log.redirect_uri, scopes=tuple(log.scope.split())
    )
    try:
        yield log, base
    finally:
        await runner.cleanup()


async def test_connect_post_a_weight_see_it_revoke(
    page: Page, hub: Hub, weight_log: tuple[WeightLog, str]
) -> None:
    log, base = weight_log
    await add_patient(hub.db, INS, "Martin", "Claire")
    await sign_in(page, hub)
    await go_to(page, "Services connectés")
    await expect(page.get_by_role("heading", name="Catalogue de services")).to_be_visible()
    await expect(page.get_by_text("Aucun service n'est connecté à cet espace.")).to_be_visible()
    await expect(page.locator(".service")).to_contain_text("Association Démo Santé")
    await fits_the_phone(page)
    await shot(page, "services-01-catalogue")

    await page.get_by_role("link", name="Connecter Carnet de poids").click()
    await page.get_by_role("link", name="Se connecter à mon espace santé").click()
    # From the service's site the Strict session cookie is not sent: one same-site click.
    await expect(page.get_by_role("heading", name="Connexion d'un service")).to_be_visible()
    await shot(page, "services-02-continuer")
    await page.get_by_role("link", name="Continuer vers mon espace santé").click()
    await expect(page.get_by_role("heading", name="Connecter Carnet de poids")).to_be_visible()
    await page.get_by_label("Lire vos documents : Résultats d'analyses biologiques").uncheck()
    await page.get_by_label("Lire votre profil médical : allergies et traitements").uncheck()
    await page.get_by_label("Lire votre agenda : vos rendez-vous").uncheck()
    await expect(page.get_by_label("Enregistrer des mesures (poids, glycémie)")).to_be_checked()
    await fits_the_phone(page)
    await shot(page, "services-02-consentement")
    await page.get_by_role("button", name="Autoriser").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Carnet de poids est connecté à votre espace"
    )
    await page.get_by_role("link", name="Revenir à Carnet de poids").click()
    await expect(page.get_by_text("Connecté.")).to_be_visible()
    assert log.tokens["scope"] == "measurements:write" and log.tokens["patient"] == INS

    await page.get_by_label("Poids (kg)").fill("72,5")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_role("status")).to_have_text("Réponse de votre espace santé : 201")

    await page.goto("/profil")
    measure = page.locator(".mesure")
    await expect(measure).to_contain_text("Poids : 72,5 kg")
    await expect(measure).to_contain_text("par Carnet de poids")
    await fits_the_phone(page)
    await shot(page, "services-03-mesures")

    await go_to(page, "Services connectés")
    connected = page.locator(".service-connecte")
    await expect(connected).to_contain_text("Enregistrer des mesures")
    await expect(connected).not_to_contain_text("Lire vos documents")
    await expect(connected).not_to_contain_text("Lire votre profil médical")
    await expect(connected).not_to_contain_text("Lire votre agenda")
    await page.get_by_role("button", name="Déconnecter Carnet de poids").click()
    await expect(page.get_by_role("status")).to_contain_text("Le service est déconnecté")
    await expect(page.locator(".service-connecte")).to_have_count(0)
    await shot(page, "services-04-deconnecte")

    await page.goto(f"{base}/")
    await page.get_by_label("Poids (kg)").fill("71")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_role("status")).to_have_text("Réponse de votre espace santé : 401")

    await page.goto("/historique")
    history = page.locator("main")
    await expect(history).to_contain_text("Service déconnecté de l'espace")
    await expect(history).to_contain_text("Mesure enregistrée par un service connecté")
    await expect(history).to_contain_text("Carnet de poids (service connecté)")
    await shot(page, "services-05-historique")
