"""The access history page of the current space."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from portal.context import db_of, now_of, visit
from portal.history import KINDS, history_intact, read_history
from portal.pages import render, signed_in

PAGE_SIZE = 50


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@signed_in
async def history(request: web.Request) -> web.StreamResponse:
    """Only the space shown (the person's or a held minor's): no id in the URL to tamper with."""
    state = visit(request)
    assert state.space is not None
    kind = request.query.get("type", "")
    since, until = _day(request.query.get("du", "")), _day(request.query.get("au", ""))
    page = (
        max(1, int(request.query.get("page", "1")))
        if request.query.get("page", "1").isdigit()
        else 1
    )
    async with db_of(request).read() as session:
        lines = await read_history(
            session,
            state.space.id,
            kind if kind in KINDS else None,
            since,
            until,
            PAGE_SIZE + 1,
            (page - 1) * PAGE_SIZE,
        )
        intact = await history_intact(session, state.space.id, now_of(request))
    return await render(
        request,
        "historique.html",
        {
            "title": "Historique des accès",
            "lines": lines[:PAGE_SIZE],
            "more": len(lines) > PAGE_SIZE,
            "intact": intact,
            "page": page,
            "kinds": KINDS,
            "kind": kind if kind in KINDS else "",
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
            "bad_dates": (request.query.get("du") and since is None)
            or (request.query.get("au") and until is None),
        },
    )
