"""The medical profile page (allergies, history, vaccinations, treatments) and its PDF summary."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from mss.catalogue.observations import MEASURES
from mss.catalogue.store import measurements_of
from mss.errors import InvalidInput
from mss.profile import store
from mss.profile.pdf import FontMissing, profile_pdf
from portal.context import db_of, now_of, visit
from portal.pages import actor, redirect, render, signed_in

NOTICES = {
    "ajoute": "L'information est ajoutée à votre profil.",
    "supprime": "L'information est supprimée.",
}


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        items = await store.profile_of(session, state.space.id)
        measurements = await measurements_of(session, state.space.id)
    return await render(
        request,
        "profil.html",
        {
            "title": "Profil médical",
            "items": items,
            "categories": store.CATEGORIES,
            "measurements": measurements,
            "measures": MEASURES,
            "notice": NOTICES.get(request.query.get("fait", ""), ""),
            "form": {},
            **extra,
        },
        status=status,
    )


@signed_in
async def profile_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@signed_in
async def add_item(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = {k: str(form.get(k, "")) for k in ("rubrique", "libelle", "precisions", "quand")}
    state, who = visit(request), actor(request)
    assert state.space is not None
    try:
        async with db_of(request).write() as session:
            await store.add_item(
                session,
                state.space.id,
                category=values["rubrique"],
                label=values["libelle"],
                detail=values["precisions"],
                when=values["quand"],
                author_kind=who.kind,
                author=who.ident,
                now=now_of(request),
            )
    except InvalidInput as error:
        return await _page(
            request, 400, error=f"L'information n'a pas été ajoutée : {error}.", form=values
        )
    return redirect(f"/profil?fait=ajoute#{values['rubrique']}")


@signed_in
async def remove_item(request: web.Request) -> web.StreamResponse:
    text = request.match_info["id"]
    state, who = visit(request), actor(request)
    assert state.space is not None
    if not text.isdigit():
        raise web.HTTPNotFound()
    async with db_of(request).write() as session:
        removed = await store.remove_item(
            session, state.space.id, int(text), author_kind=who.kind, author=who.ident
        )
    if not removed:
        raise web.HTTPNotFound()
    return redirect("/profil?fait=supprime")


@signed_in
async def summary_pdf(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    space = state.space
    assert space is not None
    async with db_of(request).read() as session:
        items = await store.profile_of(session, space.id)
    try:
        data = await asyncio.to_thread(
            profile_pdf,
            name=space.display_name,
            birth_date=space.birth_date,
            ins=space.ins,
            items=items,
            now=now_of(request),
        )
    except FontMissing as missing:
        return await _page(
            request, 503, error=f"Le résumé ne peut pas être créé : {missing.sentence}"
        )
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="profil-medical.pdf"'},
    )


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("/profil", "profile", {"GET": profile_page}),
    ("/profil/ajouter", "profile_add", {"POST": add_item}),
    ("/profil/{id}/supprimer", "profile_remove", {"POST": remove_item}),
    ("/profil/resume.pdf", "profile_pdf", {"GET": summary_pdf}),
]
