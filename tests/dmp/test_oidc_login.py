"""Professional login by OpenID Connect against a real provider on loopback (both engines).

The provider is ``oidc-provider-mock`` from PyPI, run in a thread by each test: why it and
what it does not do is in ``tests/dmp/oidc_world.py``. Over real HTTP: the browser login
(``/pro/connexion`` → the provider's form → ``/pro/retour`` → ``/pro``) followed by hand
with aiohttp, then the document API with the session's cookie; the document API with
``Authorization: Bearer`` (the ID token, and the opaque access token checked at the
provider's userinfo); and each refusal with its sentence: wrong issuer, wrong audience,
expired, bad signature, a login's answer replayed into another browser (nonce), a
state of no login, an idNat the directory does not know, a closed mailbox, a weaker
authentication level, a revoked access token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sqlalchemy import select, update

from dmp_bridge.models import DmpDocument
from dmp_bridge.pro_sessions import COOKIE, ProfessionalSession
from mss.audit import AuditEvent
from mss.db import utcnow
from mss.directory.models import Mailbox, MailboxState
from tests.dmp.conftest import Api, World
from tests.dmp.matrix import DOCUMENTS, ID_NATS, VISIBLE
from tests.dmp.oidc_world import (
    CLIENT_ID,
    Provider,
    claims_of,
    expired_age,
    oidc_api,
    running_provider,
)
from tests.dmp.test_api_matrix import SEARCH, outcome, provide_bundle
from tests.fixtures_pki import DevPki

AUTHORISED = ID_NATS["authorised"]


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture
async def hub(world: World, dev_pki: DevPki, provider: Provider) -> AsyncIterator[Api]:
    async with oidc_api(world, dev_pki, provider) as api:
        yield api


def _titles(body: bytes) -> set[str]:
    bundle = json.loads(body)
    titles = {entry["resource"]["description"] for entry in bundle.get("entry", [])}
    return {name for name in DOCUMENTS if f"Compte rendu {name}" in titles}


class Browser:
    """One browser (its own cookie jar) that trusts the hub's development CA."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=api.context()),
            cookie_jar=aiohttp.CookieJar(),
        )

    async def get(self, url: str) -> tuple[int, str, dict[str, str]]:
        full = url if url.startswith("http") else self.api.url + url
        async with self.client.get(full, allow_redirects=False) as response:
            return response.status, html.unescape(await response.text()), dict(response.headers)

    async def start(self) -> str:
        """/pro/connexion: the provider's authorization URL it redirects to."""
        status, _, headers = await self.get("/pro/connexion")
        assert status == 302
        return headers["Location"]

    async def close(self) -> None:
        await self.client.close()


@pytest.fixture
async def browser(hub: Api) -> AsyncIterator[Browser]:
    opened = Browser(hub)
    yield opened
    await opened.close()


async def _log_in(browser: Browser, provider: Provider, sub: str) -> tuple[int, str]:
    """The whole code flow; returns /pro/retour's status and its page or redirect."""
    back = await provider.consent(await browser.start(), sub)
    status, page, headers = await browser.get(back)
    return status, headers.get("Location", page)


async def test_the_browser_login_then_the_document_api_with_its_session(
    hub: Api, browser: Browser, provider: Provider, world: World
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    authorize = await browser.start()
    sent = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider.url + "/oauth2/authorize?")
    assert sent["scope"] == ["openid scope_all"] and sent["acr_values"] == ["eidas1"]
    assert sent["code_challenge_method"] == ["S256"] and sent["client_id"] == [CLIENT_ID]
    async with world.db.read() as session:
        pending = (await session.scalars(select(ProfessionalSession))).one()
    # RFC 7636 §4.2: the challenge is BASE64URL(SHA256(verifier)) of the verifier kept here
    digest = hashlib.sha256(str(pending.code_verifier).encode()).digest()
    assert sent["code_challenge"] == [urlsafe_b64encode(digest).rstrip(b"=").decode()]
    assert sent["state"] == [pending.state] and sent["nonce"] == [pending.nonce]

    back = await provider.consent(authorize, "dr-authorised")
    status, _, headers = await browser.get(back)
    assert (status, headers["Location"]) == (302, "/pro")
    cookie = headers["Set-Cookie"]
    assert COOKIE in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    status, page, _ = await browser.get("/pro")
    assert status == 200 and "Vous êtes connecté(e)" in page and "RPPS 10000000011" in page
    assert "niveau eidas1" in page

    status, body, _ = await browser.get(SEARCH)
    assert status == 200 and _titles(body.encode()) == VISIBLE["authorised"]
    async with world.db.read() as session:
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.actor == AUTHORISED))
        ).all()
        rows = (await session.scalars(select(ProfessionalSession))).all()
    assert [e.action for e in events if e.action.startswith("professional_")] == [
        "professional_login"
    ]
    login = next(e for e in events if e.action == "professional_login")
    assert login.detail["acr"] == "eidas1" and login.detail["issuer"] == provider.url
    assert any(e.action == "document_list" for e in events)  # the API's own audit
    assert [row.stage for row in rows] == ["signed_in"]  # the pending login is spent


async def test_the_session_cookie_reads_but_never_deposits(
    hub: Api, browser: Browser, provider: Provider
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    assert (await _log_in(browser, provider, "dr-authorised")) == (302, "/pro")
    async with browser.client.post(hub.url + "/fhir", json=provide_bundle()) as response:
        assert response.status == 401  # the cookie is no credential for a deposit
        assert outcome(await response.read()).startswith("authenticate with a client certificate")


async def test_logout_ends_the_session(
    hub: Api, browser: Browser, provider: Provider, world: World
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    await _log_in(browser, provider, "dr-authorised")
    _, page, _ = await browser.get("/pro")
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    async with browser.client.post(
        hub.url + "/pro/deconnexion", data={"csrf": "forged"}, allow_redirects=False
    ) as response:
        assert response.status == 403
    async with browser.client.post(
        hub.url + "/pro/deconnexion", data={"csrf": csrf}, allow_redirects=False
    ) as response:
        assert response.status == 302
    status, page, _ = await browser.get("/pro")
    assert status == 200 and "Se connecter avec Pro Santé Connect" in page
    status, _, _ = await browser.get(SEARCH)
    assert status == 401
    async with world.db.read() as session:
        actions = (
            await session.scalars(select(AuditEvent.action).where(AuditEvent.actor == AUTHORISED))
        ).all()
    assert "professional_logout" in actions


async def _bearer(api: Api, token: str, path: str = SEARCH) -> tuple[int, bytes, dict[str, str]]:
    return await api.call("GET", path, headers={"Authorization": f"Bearer {token}"})


async def test_bearer_id_token_and_opaque_access_token_read_the_record(
    hub: Api, provider: Provider
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    tokens = await provider.tokens("dr-authorised")
    status, body, _ = await _bearer(hub, tokens["id_token"])
    assert status == 200 and _titles(body) == VISIBLE["authorised"]
    status, body, _ = await _bearer(hub, tokens["access_token"])  # userinfo answers for it
    assert status == 200 and _titles(body) == VISIBLE["authorised"]


async def test_a_bearer_token_deposits_in_the_professionals_name(
    hub: Api, provider: Provider, world: World
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    token = (await provider.tokens("dr-authorised"))["id_token"]
    status, body, _ = await hub.call(
        "POST",
        "/fhir",
        json=provide_bundle(title="Lettre de liaison", unique="901"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200, body
    async with world.db.read() as session:
        authors = (
            await session.scalars(
                select(DmpDocument.author_id_nat).where(DmpDocument.title == "Lettre de liaison")
            )
        ).all()
    assert authors == [AUTHORISED]


async def _refused_bearer(api: Api, token: str) -> tuple[int, str, dict[str, str]]:
    status, body, headers = await _bearer(api, token)
    return status, outcome(body), headers


async def test_a_token_of_another_issuer_is_refused_by_name(hub: Api, provider: Provider) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    tokens = await provider.tokens("dr-authorised", base=provider.other_issuer)
    status, text, headers = await _refused_bearer(hub, tokens["id_token"])
    assert status == 401
    assert text.startswith(
        f"the token was issued by {provider.other_issuer}, not by the configured"
    )
    assert headers["WWW-Authenticate"].startswith('Bearer realm="MSS DMP", error="invalid_token"')


async def test_a_token_for_another_client_is_refused(hub: Api, provider: Provider) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    tokens = await provider.tokens("dr-authorised", client_id="another-service")
    status, text, _ = await _refused_bearer(hub, tokens["id_token"])
    assert status == 401 and text.startswith("the token was issued for another client")


async def test_a_tampered_signature_is_refused(hub: Api, provider: Provider) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    head, payload, signature = (await provider.tokens("dr-authorised"))["id_token"].split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    forged = f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    status, text, _ = await _refused_bearer(hub, forged)
    assert status == 401
    assert text.startswith("the token's signature does not verify with the provider's keys")


async def test_claims_changed_under_a_real_signature_are_refused(
    hub: Api, provider: Provider
) -> None:
    """Another idNat pasted into a signed token: the signature no longer matches."""
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    head, payload, signature = (await provider.tokens("dr-authorised"))["id_token"].split(".")
    claims = json.loads(_unb64(payload))
    claims["SubjectNameID"] = ID_NATS["treating"]
    forged_payload = urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    status, text, _ = await _refused_bearer(hub, f"{head}.{forged_payload}.{signature}")
    assert status == 401 and "signature does not verify" in text


def _unb64(part: str) -> bytes:
    return urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_an_expired_token_is_refused(world: World, dev_pki: DevPki) -> None:
    with running_provider(access_token_max_age=expired_age()) as provider:
        await provider.user("dr-authorised", **claims_of(AUTHORISED))
        tokens = await provider.tokens("dr-authorised")
        async with oidc_api(world, dev_pki, provider) as api:
            status, text, _ = await _refused_bearer(api, tokens["id_token"])
    assert status == 401 and text.startswith("the token expired at ")
    assert "Votre connexion a expiré" in text


async def test_an_unknown_id_nat_is_403(hub: Api, provider: Provider) -> None:
    await provider.user("dr-stranger", **claims_of("810000099990"))
    status, text, _ = await _refused_bearer(hub, (await provider.tokens("dr-stranger"))["id_token"])
    assert status == 403
    assert text.startswith("idNat 810000099990 is not a professional of this hub's directory")


async def test_a_closed_mailbox_is_403(hub: Api, provider: Provider, world: World) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    tokens = await provider.tokens("dr-authorised")
    async with world.db.write() as session:
        await session.execute(
            update(Mailbox)
            .where(Mailbox.address == "authorised@mss.localhost")
            .values(state=MailboxState.CLOSED)
        )
    status, text, _ = await _refused_bearer(hub, tokens["id_token"])
    assert status == 403
    assert text.startswith(f"the mailbox authorised@mss.localhost of idNat {AUTHORISED} is closed")


async def test_a_weaker_authentication_level_is_403(hub: Api, provider: Provider) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED, acr="eidas0"))
    status, text, _ = await _refused_bearer(
        hub, (await provider.tokens("dr-authorised"))["id_token"]
    )
    assert status == 403 and "(acr eidas0) is not one this hub accepts (eidas1)" in text


async def test_a_revoked_access_token_is_refused(hub: Api, provider: Provider) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    tokens = await provider.tokens("dr-authorised")
    await provider.revoke("dr-authorised")
    status, text, _ = await _refused_bearer(hub, tokens["access_token"])
    assert status == 401 and text.startswith("the provider says the access token is not active")


async def test_a_login_answer_replayed_into_another_browser_is_refused_by_its_nonce(
    hub: Api, browser: Browser, provider: Provider, world: World
) -> None:
    """Code injection: B's code with A's state. The code is good, its ID token B's nonce."""
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    first = await browser.start()
    other = Browser(hub)
    try:
        back = await provider.consent(await other.start(), "dr-authorised")
    finally:
        await other.close()
    code = parse_qs(urlsplit(back).query)["code"][0]
    state = parse_qs(urlsplit(first).query)["state"][0]
    status, page, headers = await browser.get(f"/pro/retour?code={code}&state={state}")
    assert status == 401 and "appartient à une autre connexion" in page
    assert COOKIE not in headers.get("Set-Cookie", "") or "Max-Age=0" in headers["Set-Cookie"]
    async with world.db.read() as session:
        refusals = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "professional_login_refused")
            )
        ).all()
    assert [e.detail["refusal"] for e in refusals] == ["oidc_nonce_mismatch"]


async def test_a_state_of_no_login_is_refused(
    hub: Api, browser: Browser, provider: Provider
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    authorize = await browser.start()
    back = await provider.consent(authorize, "dr-authorised")
    wrong = back.replace("state=", "state=x")
    status, page, _ = await browser.get(wrong)
    assert status == 400 and "ne correspond à aucune connexion" in page
    status, page, _ = await browser.get(back)  # the pending login was spent by the wrong state
    assert status == 400


async def test_the_browser_login_refuses_an_unknown_id_nat_and_a_closed_mailbox(
    hub: Api, browser: Browser, provider: Provider, world: World
) -> None:
    await provider.user("dr-stranger", **claims_of("810000099990"))
    status, page = await _log_in(browser, provider, "dr-stranger")
    assert status == 403 and "ne correspond à aucun professionnel" in page
    async with world.db.write() as session:
        await session.execute(
            update(Mailbox)
            .where(Mailbox.address == "authorised@mss.localhost")
            .values(state=MailboxState.CLOSED)
        )
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    status, page = await _log_in(browser, provider, "dr-authorised")
    assert status == 403 and "est fermée (closed)" in page


async def test_a_session_stops_working_when_the_mailbox_closes(
    hub: Api, browser: Browser, provider: Provider, world: World
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    await _log_in(browser, provider, "dr-authorised")
    assert (await browser.get(SEARCH))[0] == 200
    async with world.db.write() as session:
        await session.execute(
            update(Mailbox)
            .where(Mailbox.address == "authorised@mss.localhost")
            .values(state=MailboxState.CLOSED)
        )
    status, body, _ = await browser.get(SEARCH)
    assert status == 403 and "is closed" in outcome(body.encode())


async def test_the_provider_refusing_is_said(
    hub: Api, browser: Browser, provider: Provider
) -> None:
    authorize = await browser.start()
    async with (
        aiohttp.ClientSession() as client,
        client.post(authorize, data={"action": "deny"}, allow_redirects=False) as response,
    ):
        back = response.headers["Location"]
    status, page, _ = await browser.get(back)
    assert (
        status == 401 and "Le fournisseur d'identité a refusé la connexion (access_denied" in page
    )


async def test_without_oidc_a_bearer_is_401_with_the_basic_challenge(api: Api) -> None:
    status, body, headers = await _bearer(api, "a.b.c")
    assert status == 401 and "not configured" in outcome(body)
    assert headers["WWW-Authenticate"].startswith("Basic")


async def _age_sessions(world: World) -> None:
    async with world.db.write() as session:
        await session.execute(
            update(ProfessionalSession).values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )


async def test_a_login_older_than_ten_minutes_is_refused(
    hub: Api, browser: Browser, provider: Provider, world: World
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    back = await provider.consent(await browser.start(), "dr-authorised")
    await _age_sessions(world)
    status, page, _ = await browser.get(back)
    assert status == 400 and "plus de 10 minutes" in page


async def test_an_expired_session_reads_nothing(
    hub: Api, browser: Browser, provider: Provider, world: World
) -> None:
    await provider.user("dr-authorised", **claims_of(AUTHORISED))
    await _log_in(browser, provider, "dr-authorised")
    await _age_sessions(world)
    assert (await browser.get(SEARCH))[0] == 401
    status, page, _ = await browser.get("/pro")
    assert status == 200 and "Se connecter avec Pro Santé Connect" in page


async def test_without_oidc_the_pro_page_says_it_is_not_open(api: Api) -> None:
    browser = Browser(api)
    try:
        status, page, _ = await browser.get("/pro")
        assert status == 404 and "n'est pas ouverte sur ce service" in page
        status, page, _ = await browser.get("/pro/connexion")
        assert status == 404
    finally:
        await browser.close()
