"""The HTTPS application on port 8443: FHIR directory, autoconfig, portal, document API."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from aiohttp import web

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


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def build_app(settings: Settings, db: Database, services: dict[str, Any] | None = None) -> web.Application:
    """The whole HTTPS application with every part that is installed."""
    app = web.Application(middlewares=[security_headers], client_max_size=settings.limits.max_message_size)
    app[SETTINGS] = settings
    app[DB] = db
    app[SERVICES] = services if services is not None else {}
    for name in PARTS:
        importlib.import_module(name).setup(app)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", health)
    return app
