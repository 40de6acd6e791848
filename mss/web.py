"""The HTTPS application on port 8443: shared keys and problem responses.

Each part of the hub adds its routes with a ``setup(app)`` function
(FHIR directory API, Thunderbird autoconfig, portal, document API) and
reads what it needs from the application with these keys.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from aiohttp import web

from mss.config import Settings
from mss.db import Database
from mss.services import Services

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
SERVICES = web.AppKey("services", Services)


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """An RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/problem+json",
    )


def attachment_disposition(title: str, extension: str) -> str:
    """``attachment`` named after a title: an ASCII ``filename`` and the UTF-8 ``filename*`` (RFC
    6266)."""
    ascii_name = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip("-.")[:80] or "document"
    utf8_name = re.sub(r"[\x00-\x1f\x7f/\\\"]+", "-", title).strip()[:80] or "document"
    return (
        f'attachment; filename="{ascii_name}{extension}"; '
        f"filename*=UTF-8''{quote(utf8_name + extension, safe='')}"
    )
