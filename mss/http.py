"""The HTTPS application on port 8443: FHIR directory, autoconfig, portal, document API."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from aiohttp import web, web_response

from mss.config import Settings
from mss.db import Database
from mss.web import DB, SERVICES, SETTINGS

log = logging.getLogger("mss.http")

# Each module exposes setup(app); the order is the order of route registration.
PARTS = (
    "dmp_bridge.api",  # before the directory, whose /fhir/{tail} catch-all would shadow it
    "mss.directory.fhir_api",
    "mss.mailbox.autoconfig",
    "portal.app",
)


# RFC 6797 §6.1: a year, and every subdomain (the portal and the APIs share the hub's name).
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SERVER_NAME = "mss-hub"  # not aiohttp's name and version
# A request aiohttp cannot parse gets its 400 from aiohttp itself, before any part of the
# application runs; its Server header is this module default, read for every response.
web_response.SERVER_SOFTWARE = SERVER_NAME


async def secure_response(_request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Every response the application sends: the security headers, a neutral Server header.

    A signal, not a middleware: it also runs for the responses aiohttp makes itself (404,
    405, an ``HTTPException``, the 500 of a handler that raised), just before the headers go.
    """
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER_NAME


def build_app(settings: Settings, db: Database, services: dict[str, Any] | None = None) -> web.Application:
    """The whole HTTPS application with every part that is installed."""
    app = web.Application(client_max_size=settings.limits.max_message_size)
    app[SETTINGS] = settings
    app[DB] = db
    app[SERVICES] = services if services is not None else {}
    app.on_response_prepare.append(secure_response)
    for name in PARTS:
        importlib.import_module(name).setup(app)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", health)
    return app
