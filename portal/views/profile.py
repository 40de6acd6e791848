"""The medical profile page (allergies, history, vaccinations, treatments) and its PDF summary."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from mss.catalogue.observations import MEASURES
from mss.catalogue.store import measurements_of
from mss.directory.models import Patient
from mss.errors import InvalidInput
from mss.profile import store
from mss.profile.models import ProfileItem
from mss.profile.pdf import FontMissing, profile_pdf
from portal.context import db_of, now_of, visit
from portal.french import day
from portal.pages import actor, redirect, render, signed_in
from portal.professionals import ProfessionalCard, cards_for

NOTICES = {
    "envoye": "Le résumé de votre profil a été envoyé à {name}.",
    "ajoute": "L'information est ajoutée à votre profil.",
    "supprime": "L'information est supprimée.",
}


def authorship(item: ProfileItem, person: Patient, cards: dict[str, ProfessionalCard]) -> str:
    """Who wrote the item and when, in the patient's words."""
    when = f", le {day(item.created_at)}"
    if item.author_kind == "professional":
        card = cards.get(item.author)
        known = card.name if card is not None and card.id is not None else ""
        name = item.author_name or known  # as the professional signed it, else the directory
        role = card.profession.lower() if card is not None and card.profession else ""
        who = ", ".join(p for p in (name or "un professionnel de santé", role) if p)
        rpps = card.rpps if card is not None else item.author
        return f"Inscrit par {who} (RPPS {rpps}){when}"
    if item.author == person.ins:
        return f"Ajouté par vous{when}"
    if item.author_kind == "guardian":
        return (
            f"Ajouté par {item.author_name or 'un représentant légal'} (représentant légal){when}"
        )
    return f"Ajouté par {item.author_name or 'le patient'}{when}"


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    state = visit(request)
    assert state.space is not None and state.person is not None
    async with db_of(request).read() as session:
        items = await store.profile_of(session, state.space.id)
        cards = await cards_for(
            session,
            [i.author for rows in items.values() for i in rows if i.author_kind == "professional"],
        )
        measurements = await measurements_of(session, state.space.id)
    authors = {
        item.id: authorship(item, state.person, cards) for rows in items.values() for item in rows
    }
    return await render(
        request,
        "profil.html",
        {
            "title": "Profil médical",
            "items": items,
            "authors": authors,
            "categories": store.CATEGORIES,
            "notice": NOTICES.get(request.query.get("fait", ""), "").format(
                name=request.query.get("a", "")[:200] or "ce professionnel"
            ),
            "measurements": measurements,
            "measures": MEASURES,
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
                author_name=who.name,
                source=who.source,
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


async def summary_of(request: web.Request) -> bytes:
    """The space's profile summary as PDF/A (``mss.profile.pdf``); raises ``FontMissing``."""
    space = visit(request).space
    assert space is not None
    async with db_of(request).read() as session:
        items = await store.profile_of(session, space.id)
    return await asyncio.to_thread(
        profile_pdf,
        name=space.display_name,
        birth_date=space.birth_date,
        ins=space.ins,
        items=items,
        now=now_of(request),
    )


@signed_in
async def summary_pdf(request: web.Request) -> web.StreamResponse:
    try:
        data = await summary_of(request)
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
