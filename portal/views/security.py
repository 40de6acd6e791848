"""The signed-in person's own login security: enrol or remove an authenticator app (TOTP)."""

from __future__ import annotations

from aiohttp import web

from mss.directory.store import patient_by_id
from mss.patients import Actor, audit, verify_secret
from portal import sessions, totp
from portal.context import db_of, now_of, source_of, visit
from portal.pages import redirect, render, signed_in


def _self(request: web.Request) -> Actor:
    person = visit(request).person
    assert person is not None
    return Actor.person(person, person, source_of(request))


@signed_in
async def security(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.person is not None and state.row is not None
    pending = state.row.pending_totp_secret
    notice = {
        "totp": "Votre application d'authentification est enregistrée.",
        "retire": "Votre application est retirée : vos codes arriveront de nouveau par SMS.",
    }.get(request.query.get("fait", ""), "")
    return await render(
        request,
        "securite.html",
        {
            "title": "Sécurité de la connexion",
            "enrolled": bool(state.person.totp_secret),
            "notice": notice,
            "pending": pending,
            "uri": totp.provisioning_uri(pending, state.person.ins) if pending else "",
            "grouped": totp.grouped(pending) if pending else "",
        },
    )


@signed_in
async def start_enrolment(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.row is not None
    async with db_of(request).write() as session:
        row = await sessions.current(session, state.row)
        if row is not None:
            row.pending_totp_secret = totp.new_secret()
    return redirect("/securite#enrolement")


@signed_in
async def finish_enrolment(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.row is not None and state.person is not None
    secret = state.row.pending_totp_secret
    code = str((await request.post()).get("code", ""))
    if not secret:
        return redirect("/securite")
    step = totp.matching_step(secret, code, now_of(request))
    if step is None:
        return await render(
            request,
            "securite.html",
            {
                "title": "Sécurité de la connexion",
                "enrolled": False,
                "pending": secret,
                "uri": totp.provisioning_uri(secret, state.person.ins),
                "grouped": totp.grouped(secret),
                "error": "Ce code ne correspond pas. Vérifiez l'heure de votre téléphone et "
                "saisissez le code "
                "affiché en ce moment.",
            },
            status=400,
        )
    async with db_of(request).write() as session:
        person = await patient_by_id(session, state.person.id)
        row = await sessions.current(session, state.row)
        assert person is not None
        person.totp_secret = secret
        person.totp_last_step = step  # the code that proved the enrolment does not log in too
        if row is not None:
            row.pending_totp_secret = None
        audit(session, "totp_enrolled", _self(request), person)
    return redirect("/securite?fait=totp")


@signed_in
async def remove(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.person is not None
    if not await verify_secret(
        state.person.password_hash, str((await request.post()).get("mot_de_passe", ""))
    ):
        return await render(
            request,
            "securite.html",
            {
                "title": "Sécurité de la connexion",
                "enrolled": True,
                "error": "Mot de passe incorrect : l'application n'a pas été retirée.",
            },
            status=401,
        )
    async with db_of(request).write() as session:
        person = await patient_by_id(session, state.person.id)
        assert person is not None
        person.totp_secret = None
        audit(session, "totp_removed", _self(request), person)
    return redirect("/securite?fait=retire")
