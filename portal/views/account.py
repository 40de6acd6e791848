"""The account page of the current space: deactivate, reactivate, close (each confirmed)."""

from __future__ import annotations

from aiohttp import web

from mss.directory.store import patient_by_id
from mss.patients import (
    Actor,
    LifecycleRefused,
    audit,
    close_account,
    deactivate,
    reactivate,
    verify_secret,
)
from mss.policy.notice_recipients import CHANNEL_CHOICES
from portal import sessions
from portal.context import db_of, now_of, settings_of, source_of, visit
from portal.pages import actor, redirect, render, signed_in

ACTIONS = {
    "desactiver": ("Désactiver le compte", deactivate),
    "reactiver": ("Réactiver le compte", reactivate),
    "cloturer": ("Clôturer le compte", close_account),
}


CHANNEL_LABELS = {
    "both": "Par e-mail et par SMS",
    "email": "Par e-mail seulement",
    "sms": "Par SMS seulement",
}


@signed_in
async def account(request: web.Request) -> web.StreamResponse:
    notice = {
        "desactiver": "Le compte est désactivé.",
        "reactiver": "Le compte est de nouveau actif.",
        "cloturer": "Le compte est clôturé.",
        "avis": "Votre choix est enregistré : les prochains avis suivront ce choix.",
    }.get(request.query.get("fait", ""), "")
    return await render(request, "compte.html", _account_context(request, notice=notice))


def _account_context(request: web.Request, **extra: object) -> dict[str, object]:
    person = visit(request).person
    assert person is not None
    return {
        "title": "Mon compte",
        "channel_labels": CHANNEL_LABELS,
        "channels": person.notify_channels if person.notify_channels in CHANNEL_CHOICES else "both",
        "reopen_days": _reopen_days(request),
        **extra,
    }


def _reopen_days(request: web.Request) -> int:
    """How long a closed account can be reopened (``mss.policy.lifecycle.decide_reopening``)."""
    return settings_of(request).retention.closed_account_days


@signed_in
async def choose_channels(request: web.Request) -> web.StreamResponse:
    """The signed-in person's own choice (they receive a child's notices too, as guardian)."""
    state = visit(request)
    assert state.person is not None
    wanted = str((await request.post()).get("canaux", ""))
    if wanted not in CHANNEL_CHOICES:
        error = "Choisissez comment recevoir les avis : par e-mail, par SMS ou les deux."
        return await render(
            request, "compte.html", _account_context(request, error=error), status=400
        )
    async with db_of(request).write() as session:
        patient = await patient_by_id(session, state.person.id, for_update=True)
        assert patient is not None
        if patient.notify_channels != wanted:
            patient.notify_channels = wanted
            audit(
                session,
                "account_notices_changed",
                Actor.person(state.person, state.person, source_of(request)),
                patient,
                channels=wanted,
            )
    return redirect("/compte?fait=avis")


@signed_in
async def confirm(request: web.Request) -> web.StreamResponse:
    name = request.match_info["action"]
    if name not in ACTIONS:
        raise web.HTTPNotFound()
    return await render(
        request,
        "confirmer.html",
        {"title": ACTIONS[name][0], "action": name, "reopen_days": _reopen_days(request)},
    )


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
                    "reopen_days": _reopen_days(request),
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
                    "reopen_days": _reopen_days(request),
                    "error": "Mot de passe incorrect : le compte n'a pas été clôturé.",
                },
                status=401,
            )
    try:
        async with db_of(request).write() as session:
            patient = await patient_by_id(session, state.space.id, for_update=True)
            assert patient is not None
            transition(session, patient, actor(request), now_of(request))
    except LifecycleRefused as refused:
        return await render(
            request,
            "confirmer.html",
            {
                "title": title,
                "action": name,
                "reopen_days": _reopen_days(request),
                "error": refused.sentence,
            },
            status=409,
        )
    if name == "cloturer" and state.space.id == state.person.id:
        assert state.row is not None
        await sessions.end(db_of(request), state.row)
        state.row, state.person, state.space, state.minors = None, None, None, []
        return await render(
            request,
            "cloture.html",
            {"title": "Compte clôturé", "reopen_days": _reopen_days(request)},
        )
    return redirect(f"/compte?fait={name}")
