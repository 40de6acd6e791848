"""Helpers of the catalogue's tests: a registered service, the demo client, the consent page."""

from __future__ import annotations

import html
import re
import urllib.parse
from typing import Any

from examples.weight_log import WeightLog
from mss.catalogue.models import CatalogueService
from mss.catalogue.store import add_service
from mss.db import Database
from tests.portal.conftest import Hub

REDIRECT = "http://127.0.0.1:9/retour"  # never fetched: the tests read the code off the page


async def register(
    db: Database,
    *,
    client_id: str = "carnet",
    status: str = "referenced",
    scopes: tuple[str, ...] = ("measurements:write", "documents:11502-2"),
    redirect: str = REDIRECT,
) -> CatalogueService:
    async with db.write() as session:
        return await add_service(
            session,
            name="Carnet de poids",
            editor="Association Démo Santé",
            description="Notez votre poids.",
            scopes=list(scopes),
            redirect_uris=[redirect],
            home_url=redirect.rsplit("/", 1)[0] + "/",
            status=status,
            client_id=client_id,
        )


def client_of(hub: Hub, client_id: str = "carnet", redirect: str = REDIRECT) -> WeightLog:
    return WeightLog(
        str(hub.client.make_url("")).rstrip("/"), redirect, client_id=client_id, ssl_context=False
    )


def local(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def hidden_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)
        if name != "csrf"
    }


def back_link(page: str) -> str:
    found = re.search(r'<a class="button" href="([^"]+)">Revenir', page)
    assert found, page
    return html.unescape(found.group(1))


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


async def answer(
    hub: Hub, authorization_url: str, choice: list[str] | None, **extra: Any
) -> tuple[int, str]:
    """Open the consent page of ``authorization_url`` and answer it (None: refuse)."""
    path = local(authorization_url)
    response, page = await hub.page(path)
    assert response.status == 200, page
    form: dict[str, Any] = {**hidden_fields(page), **extra}
    token = await hub.csrf(path)
    data: list[tuple[str, str]] = [("csrf", token), *form.items()]
    data.append(("reponse", "refuser" if choice is None else "autoriser"))
    data += [("autorisation", scope) for scope in choice or []]
    posted = await hub.client.post("/oauth/autoriser", data=data, allow_redirects=False)
    return posted.status, await posted.text()


async def connect(hub: Hub, log: WeightLog, choice: list[str] | None = None) -> dict[str, Any]:
    """The whole authorization code + PKCE flow; the token response."""
    url = log.authorization_url()
    status, page = await answer(hub, url, choice if choice is not None else log.scope.split())
    assert status == 200, page
    back = query_of(back_link(page))
    token_status, body = await log.exchange(back["code"], back["state"])
    assert token_status == 200, body
    return body
