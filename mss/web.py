"""The HTTPS application on port 8443: shared keys and problem responses.

Each part of the hub adds its routes with a ``setup(app)`` function
(FHIR directory API, Thunderbird autoconfig, portal, document API) and
reads what it needs from the application with these keys.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from mss.config import Settings
from mss.db import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
SERVICES = web.AppKey("services", dict)


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """An RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False),
                        content_type="application/problem+json")
