"""The token endpoint of the catalogue's services (RFC 6749 §3.2) on the HTTPS application."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import MultiDict

from mss.catalogue.oauth import Answer, Params, revocation_response, token_response
from mss.config import portal_url
from mss.db import Database
from mss.web import DB, SETTINGS

TOKEN_PATH = "/oauth/token"
REVOCATION_PATH = "/oauth/revoke"


async def token(request: web.Request) -> web.Response:
    """POST application/x-www-form-urlencoded (RFC 6749 §4.1.3, §6); JSON answer, no-store."""
    return await _form_endpoint(request, token_response, TOKEN_PATH)


async def revoke(request: web.Request) -> web.Response:
    """RFC 7009 §2.1: the service gives a token back."""
    return await _form_endpoint(request, revocation_response, REVOCATION_PATH)


Endpoint = Callable[[Database, Params, str], Awaitable[Answer]]


async def _form_endpoint(request: web.Request, answer: Endpoint, path: str) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        body = {
            "error": "invalid_request",
            "error_description": "The token request must be application/x-www-form-urlencoded.",
        }
        status, headers = 400, [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
    else:
        form = await request.post()
        params = MultiDict((k, v) for k, v in form.items() if isinstance(v, str))
        status, body, headers = await answer(
            request.app[DB], params, portal_url(request.app[SETTINGS]) + path
        )
    response = web.Response(
        status=status, text=json.dumps(body), content_type="application/json", charset="utf-8"
    )
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def setup(app: web.Application) -> None:
    app.router.add_post(TOKEN_PATH, token)
    app.router.add_post(REVOCATION_PATH, revoke)
