"""The professionals' login page in Debian's Chromium (390x844), through the real provider.

The hub's /pro pages over TLS on loopback and ``oidc-provider-mock`` (see
``tests/dmp/oidc_world.py``) in a thread: the button, the provider's own form, the way
back, the signed-in page, a document read with the session, the logout. Screenshots go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from tests.dmp.conftest import World
from tests.dmp.matrix import ID_NATS
from tests.dmp.oidc_world import Provider, claims_of, oidc_api, running_provider
from tests.dmp.test_api_matrix import SEARCH
from tests.fixtures_pki import DevPki
from tests.portal.test_browser import fits_the_phone, phone_page, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


async def test_a_doctor_logs_in_with_pro_sante_connect_reads_and_logs_out(
    world: World, dev_pki: DevPki, provider: Provider
) -> None:
    await provider.user("dr-authorised", **claims_of(ID_NATS["authorised"]))
    async with oidc_api(world, dev_pki, provider) as api, phone_page(api.url) as page:
        await page.goto("/pro")
        await expect(page.get_by_role("heading", name="Espace professionnel")).to_be_visible()
        await fits_the_phone(page)
        await shot(page, "pro-connexion")
        await page.get_by_role("link", name="Se connecter avec Pro Santé Connect").click()

        await page.wait_for_url(f"{provider.url}/oauth2/authorize?*")  # the provider's own form
        await page.get_by_placeholder("sub").fill("dr-authorised")
        await page.get_by_role("button", name="Authorize").click()

        await page.wait_for_url(f"{api.url}/pro")
        status = page.get_by_role("status")
        await expect(status).to_contain_text("Vous êtes connecté(e)")
        await expect(status).to_contain_text("RPPS 10000000011")
        await expect(page.get_by_text("niveau eidas1")).to_be_visible()
        await fits_the_phone(page)
        await shot(page, "pro-connecte")

        answer = await page.request.get(api.url + SEARCH)  # the browser's cookie, nothing else
        assert answer.status == 200 and (await answer.json())["resourceType"] == "Bundle"

        await page.get_by_role("button", name="Se déconnecter").click()
        await expect(
            page.get_by_role("link", name="Se connecter avec Pro Santé Connect")
        ).to_be_visible()
        answer = await page.request.get(api.url + SEARCH)
        assert answer.status == 401


async def test_a_refused_login_is_said_in_french_on_the_phone(
    world: World, dev_pki: DevPki, provider: Provider
) -> None:
    await provider.user("dr-stranger", **claims_of("810000099990"))
    async with oidc_api(world, dev_pki, provider) as api, phone_page(api.url) as page:
        await page.goto("/pro/connexion")
        await page.get_by_placeholder("sub").fill("dr-stranger")
        await page.get_by_role("button", name="Authorize").click()
        await page.wait_for_url(f"{api.url}/pro/retour?*")
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text(
            "L'identifiant national 810000099990 ne correspond à aucun professionnel"
        )
        await expect(page.get_by_role("link", name="Recommencer la connexion")).to_be_visible()
        await fits_the_phone(page)
        await shot(page, "pro-refus")
