"""A demo service of the catalogue: a weight and blood-sugar log that writes FHIR Observations.

It is an OAuth 2.0 public client (RFC 6749 §4.1 with PKCE S256, RFC 7636): "Connecter"
sends the patient to the hub's consent page; the hub sends them back to ``/retour``
with a code, exchanged for an access token and a refresh token; a weight typed on the
page is posted to ``POST /fhir/Observation`` with the token.

    python examples/weight_log.py --hub https://localhost:8443 [--port 8765] [--insecure]

Its client id is registered by ``mss init --demo`` (``demo-carnet-poids``) or by
``mss catalogue add``. The tokens are kept in memory only (one patient at a time:
it is a demo).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import html
import secrets
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

CLIENT_ID = "demo-carnet-poids"
INS_OID = "urn:oid:1.2.250.1.213.1.4.8"
SCOPES = "measurements:write documents:11502-2"


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def weight_observation(ins: str, kilograms: float, when: dt.datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"identifier": {"system": INS_OID, "value": ins}},
        "effectiveDateTime": when.isoformat(timespec="seconds"),
        "valueQuantity": {
            "value": kilograms,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
    }


@dataclass
class WeightLog:
    """The client's state: where the hub is, the pending authorization, the tokens."""

    hub: str
    redirect_uri: str
    client_id: str = CLIENT_ID
    scope: str = SCOPES
    ssl_context: ssl.SSLContext | bool = True
    pending: dict[str, str] = field(default_factory=dict)  # state -> code_verifier
    tokens: dict[str, Any] = field(default_factory=dict)
    last_status: int = 0
    last_answer: str = ""

    def authorization_url(self) -> str:
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(16)
        self.pending[state] = verifier
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": state,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self.hub}/oauth/autoriser?{query}"

    async def _post_form(
        self, data: dict[str, str], path: str = "/oauth/token"
    ) -> tuple[int, dict[str, Any]]:
        connector = aiohttp.TCPConnector(ssl=self.ssl_context)
        async with (
            aiohttp.ClientSession(connector=connector) as client,
            client.post(f"{self.hub}{path}", data=data) as response,
        ):
            return response.status, await response.json()

    async def exchange(self, code: str, state: str) -> tuple[int, dict[str, Any]]:
        """RFC 6749 §4.1.3 with the code_verifier of RFC 7636 §4.5."""
        verifier = self.pending.pop(state, None)
        if verifier is None:
            return 400, {"error": "unknown state"}
        status, body = await self._post_form(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": self.client_id,
                "code_verifier": verifier,
            }
        )
        if status == 200:
            self.tokens = body
        return status, body

    async def refresh(self) -> tuple[int, dict[str, Any]]:
        """RFC 6749 §6; the hub rotates the refresh token."""
        status, body = await self._post_form(
            {
                "grant_type": "refresh_token",
                "refresh_token": self.tokens.get("refresh_token", ""),
                "client_id": self.client_id,
            }
        )
        if status == 200:
            self.tokens = body
        return status, body

    async def revoke(self, which: str = "refresh_token") -> tuple[int, dict[str, Any]]:
        """RFC 7009: give a token back (the refresh token ends the connection)."""
        return await self._post_form(
            {
                "token": self.tokens.get(which, ""),
                "token_type_hint": which,
                "client_id": self.client_id,
            },
            path="/oauth/revoke",
        )

    async def post_weight(self, kilograms: float) -> tuple[int, dict[str, Any]]:
        observation = weight_observation(
            self.tokens.get("patient", ""), kilograms, dt.datetime.now(dt.UTC)
        )
        connector = aiohttp.TCPConnector(ssl=self.ssl_context)
        headers = {"Authorization": f"Bearer {self.tokens.get('access_token', '')}"}
        async with (
            aiohttp.ClientSession(connector=connector) as client,
            client.post(
                f"{self.hub}/fhir/Observation", json=observation, headers=headers
            ) as response,
        ):
            self.last_status = response.status
            body = await response.json(content_type=None)
        return self.last_status, body


def _page(title: str, body: str) -> web.Response:
    return web.Response(
        text=f'<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>",
        content_type="text/html",
    )


def build_app(log: WeightLog) -> web.Application:
    """The service's pages: home (connect, or note a weight), the return from the hub."""

    async def home(request: web.Request) -> web.Response:
        if not log.tokens:
            return _page(
                "Carnet de poids",
                f'<p><a href="{html.escape(log.authorization_url())}">'
                "Se connecter à mon espace santé</a></p>",
            )
        said = ""
        if log.last_status:
            said = f'<p role="status">Réponse de votre espace santé : {log.last_status}</p>'
        return _page(
            "Carnet de poids",
            f"{said}<p>Connecté.</p><form method=post action=/poids>"
            "<label for=poids>Poids (kg)</label> <input id=poids name=poids inputmode=decimal>"
            " <button type=submit>Enregistrer</button></form>",
        )

    async def back(request: web.Request) -> web.Response:
        if "error" in request.query:
            return _page("Connexion refusée", f"<p>{html.escape(request.query['error'])}</p>")
        status, body = await log.exchange(
            request.query.get("code", ""), request.query.get("state", "")
        )
        if status != 200:
            return _page("Connexion impossible", f"<p>{html.escape(str(body))}</p>")
        raise web.HTTPFound("/")

    async def weight(request: web.Request) -> web.Response:
        form = await request.post()
        await log.post_weight(float(str(form.get("poids", "0")).replace(",", ".")))
        raise web.HTTPFound("/")

    app = web.Application()
    app.router.add_get("/", home)
    app.router.add_get("/retour", back)
    app.router.add_post("/poids", weight)
    return app


async def _serve(hub: str, port: int, insecure: bool) -> None:
    log = WeightLog(hub.rstrip("/"), f"http://127.0.0.1:{port}/retour", ssl_context=not insecure)
    runner = web.AppRunner(build_app(log))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"weight log on http://127.0.0.1:{port}/ (client {log.client_id})")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", required=True, help="the hub's portal URL")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--insecure", action="store_true", help="accept the hub's development certificate"
    )
    arguments = parser.parse_args()
    asyncio.run(_serve(arguments.hub, arguments.port, arguments.insecure))
