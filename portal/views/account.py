"""The account page of the current space: deactivate, reactivate, close (each confirmed)."""

from __future__ import annotations

from aiohttp import web

from mss.directory.models import Patient
from mss.patients import LifecycleRefused, close_account, deactivate, reactivate, verify_secret
from portal import sessions
from portal.context import db_of, now_of, visit
from portal.pages import actor, redirect, render, signed_in

ACTIONS = {
    "desactiver": ("Désactiver le compte", deactivate),
    "reactiver": ("Réactiver le compte", reactivate),
    "cloturer": ("Clôturer le compte", close_account),
}


@signed_in
async def account(request: web.Request) -> web.StreamResponse:
    notice = {
        "desactiver": "Le compte est désactivé.",
        "reactiver": "Le compte est de nouveau actif.",
        "cloturer": "Le compte est clôturé.",
    }.get(request.query.get("fait", ""), "")
    return await render(request, "compte.html", {"title": "Mon compte", "notice": notice})


@signed_in
async def confirm(request: web.Request) -> web.StreamResponse:
    name = request.match_info["action"]
    if name not in ACTIONS:
        raise web.HTTPNotFound()
    return await render(request, "confirmer.html", {"title": ACTIONS[name][0], "action": name})


@signed_in
async def change(request: web.Request) -> web.StreamResponse:
    name = request.match_info["action"]
    if name not in ACTIONS:
        raise web.HTTPNotFound()
    title, transition = ACTIONS[name]
    state = visit(request)
    assert state.person is not None and state.space is not None
    form = await request.post()
    if name == "cloturer":
        if form.get("comprends") != "oui":
            return await render(
                request,
                "confirmer.html",
                {
                    "title": title,
                    "action": name,
                    "error": "Cochez la case pour confirmer que vous avez compris.",
                },
                status=400,
            )
        if not await verify_secret(state.person.password_hash, str(form.get("mot_de_passe", ""))):
            return await render(
                request,
                "confirmer.html",
                {
                    "title": title,
                    "action": name,
                    "error": "Mot de passe incorrect : le compte n'a pas été clôturé.",
                },
                status=401,
            )
    try:
        async with db_of(request).write() as session:
            patient = await session.get(Patient, state.space.id, with_for_update=True)
            assert patient is not None
            transition(session, patient, actor(request), now_of(request))
    except LifecycleRefused as refused:
        return await render(
            request,
            "confirmer.html",
            {"title": title, "action": name, "error": refused.sentence},
            status=409,
        )
    if name == "cloturer" and state.space.id == state.person.id:
        assert state.row is not None
        await sessions.end(db_of(request), state.row)
        state.row, state.person, state.space, state.minors = None, None, None, []
        return await render(request, "cloture.html", {"title": "Compte clôturé"})
    return redirect(f"/compte?fait={name}")
