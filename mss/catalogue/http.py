"""The token endpoint of the catalogue's services (RFC 6749 §3.2) on the HTTPS application."""

from __future__ import annotations

import json

from aiohttp import web
from multidict import MultiDict

from mss.catalogue.oauth import token_response
from mss.config import portal_url
from mss.web import DB, SETTINGS

TOKEN_PATH = "/oauth/token"


async def token(request: web.Request) -> web.Response:
    """POST application/x-www-form-urlencoded (RFC 6749 §4.1.3, §6); JSON answer, no-store."""
    if request.content_type != "application/x-www-form-urlencoded":
        body = {
            "error": "invalid_request",
            "error_description": "The token request must be application/x-www-form-urlencoded.",
        }
        status, headers = 400, [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
    else:
        form = await request.post()
        params = MultiDict((k, v) for k, v in form.items() if isinstance(v, str))
        status, body, headers = await token_response(
            request.app[DB], params, portal_url(request.app[SETTINGS]) + TOKEN_PATH
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
