"""The home page (account state, spaces, links) and the switch between spaces."""

from __future__ import annotations

from aiohttp import web

from mss.directory.store import find_patient_mailbox, patient_by_id
from mss.patients import Actor, audit, holds_minor
from portal import sessions
from portal.context import db_of, source_of, visit
from portal.messages import unread_count
from portal.pages import redirect, render, signed_in

NOT_HELD = (
    "Vous n'avez pas accès à cet espace : vous n'êtes pas enregistré comme représentant légal "
    "de cette personne."
)


@signed_in
async def home(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        mailbox = await find_patient_mailbox(session, state.space.id)
        unread = await unread_count(session, mailbox.id) if mailbox is not None else None
    return await render(request, "accueil.html", {"title": "Accueil", "unread": unread})


@signed_in
async def switch_space(request: web.Request) -> web.StreamResponse:
    """Show the space of the person themselves or of a minor they hold; anything else is refused."""
    state = visit(request)
    assert state.person is not None and state.row is not None
    person = state.person
    wanted = str((await request.post()).get("patient", ""))
    if not wanted.isdigit():
        return await render(
            request, "refus.html", {"title": "Espace inconnu", "sentence": NOT_HELD}, status=403
        )
    target_id = int(wanted)
    async with db_of(request).write() as session:
        allowed = target_id == person.id or await holds_minor(session, person.id, target_id)
        if not allowed:
            audit(
                session,
                "space_refused",
                Actor.person(person, person, source_of(request)),
                person,
                requested=target_id,
            )
        else:
            row = await sessions.current(session, state.row)
            if row is None:
                return redirect("/connexion")
            row.space_patient_id = target_id
            if target_id != person.id:
                minor = await patient_by_id(session, target_id)
                assert minor is not None
                audit(
                    session, "space_opened", Actor.person(person, minor, source_of(request)), minor
                )
    if not allowed:
        return await render(
            request, "refus.html", {"title": "Accès refusé", "sentence": NOT_HELD}, status=403
        )
    return redirect("/")
