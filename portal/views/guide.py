"""The help page: how to log in, what the access history means, whom to contact. Open to all."""

from __future__ import annotations

from aiohttp import web

from portal.context import settings_of
from portal.pages import open_to_all, render


@open_to_all
async def help_page(request: web.Request) -> web.StreamResponse:
    """Readable signed in or not: a patient who cannot log in needs it most."""
    settings = settings_of(request)
    return await render(
        request,
        "aide.html",
        {
            "title": "Aide",
            "contact": settings.portal.support_contact,
            "domain": settings.domain,
        },
    )
