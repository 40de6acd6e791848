"""A real OpenID provider on loopback and the document API configured to trust it.

The provider is ``oidc-provider-mock`` (PyPI, MIT): a Flask application built on Authlib's
authorization server (``authlib.integrations.flask_oauth2``, ``authlib.oidc.core``), so the
discovery document, the JWKS, the authorization endpoint, the code exchange, the RS256 ID
tokens (iss, aud, exp, nonce, and any claim we give a user) and the userinfo endpoint are a
real protocol implementation, not answers we wrote. It runs in a thread of the test
(werkzeug's threaded server on a free loopback port) and keeps its users, codes and tokens
in memory; ``PUT /users/<sub>`` gives a user the claims Pro Santé Connect would
(``SubjectNameID``, ``preferred_username``, ``acr``). Its ``iss`` is the host it is asked
at, so ``http://127.0.0.1:<port>`` issues tokens of another issuer with the same key.
Chosen over ``pyop`` (a provider library with no server: we would have written the HTTP
side) and ``django-oidc-provider`` (a Django project and database to set up). What it does
not do: it ignores ``code_challenge`` (its Authlib grant has no PKCE extension), so the
tests check our PKCE pair themselves; its access tokens are opaque, so the hub checks them
at its userinfo endpoint (JWT access tokens, as Pro Santé Connect's, are checked with keys
made in ``tests/test_oidc_relying_party.py``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import oidc_provider_mock

from mss.config import Oidc
from tests.dmp.conftest import Api, World, start_api
from tests.fixtures_pki import DevPki

CLIENT_ID, CLIENT_SECRET = "mss-hub", "hub-secret-for-tests"
REDIRECT = "https://localhost/pro/retour"  # only for tokens fetched without the hub


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Provider:
    """The running provider at ``url`` (http://localhost:<port>)."""

    url: str
    port: int

    @property
    def other_issuer(self) -> str:
        """The same server asked at another host name: another ``iss``, the same key."""
        return f"http://127.0.0.1:{self.port}"

    async def user(self, sub: str, **claims: Any) -> None:
        async with (
            aiohttp.ClientSession() as client,
            client.put(f"{self.url}/users/{sub}", json=claims) as response,
        ):
            assert response.status == 204, await response.text()

    async def consent(self, authorize_url: str, sub: str) -> str:
        """The user ``sub`` says yes on the provider's form; returns where it sends the browser."""
        async with (
            aiohttp.ClientSession() as client,
            client.post(authorize_url, data={"sub": sub}, allow_redirects=False) as response,
        ):
            assert response.status == 302, await response.text()
            return response.headers["Location"]

    async def tokens(
        self, sub: str, *, client_id: str = CLIENT_ID, base: str | None = None
    ) -> dict[str, Any]:
        """An ID token and access token for ``sub``, by the code flow without the hub."""
        base = base or self.url
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "scope": "openid scope_all",
                "state": "s",
                "nonce": secrets.token_urlsafe(16),
            }
        )
        back = await self.consent(f"{base}/oauth2/authorize?{query}", sub)
        code = parse_qs(urlsplit(back).query)["code"][0]
        basic = base64.b64encode(f"{client_id}:{CLIENT_SECRET}".encode()).decode()
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                f"{base}/oauth2/token",
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                headers={"Authorization": f"Basic {basic}"},
            ) as response,
        ):
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    async def revoke(self, sub: str) -> None:
        async with (
            aiohttp.ClientSession() as client,
            client.post(f"{self.url}/users/{sub}/revoke-tokens") as response,
        ):
            assert response.status == 204


@contextlib.contextmanager
def running_provider(**options: Any) -> Iterator[Provider]:
    """oidc-provider-mock in a thread; ``options`` as ``run_server_in_thread`` takes them."""
    with oidc_provider_mock.run_server_in_thread(**options) as server:
        yield Provider(f"http://localhost:{server.server_port}", server.server_port)


def claims_of(id_nat: str, acr: str = "eidas1") -> dict[str, Any]:
    """What Pro Santé Connect says of a professional (idNat twice, the e-CPS level)."""
    return {"SubjectNameID": id_nat, "preferred_username": id_nat, "acr": acr}


@contextlib.asynccontextmanager
async def oidc_api(
    world: World, pki: DevPki, provider: Provider, **oidc: Any
) -> AsyncIterator[Api]:
    """The document API (and /pro) on https://localhost:<port>, trusting ``provider``."""
    port = free_port()
    settings = world.settings
    settings.oidc = Oidc(
        issuer=provider.url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=f"https://localhost:{port}/pro/retour",
        **oidc,
    )
    settings.portal.public_url = f"https://localhost:{port}"
    async with start_api(world.db, settings, pki, world, port=port) as api:
        yield api


def expired_age() -> dt.timedelta:
    """A token lifetime that makes every token the provider issues expired already."""
    return dt.timedelta(seconds=-120)
