"""Activating an account, or opposing it, with the code of the letter (no login yet)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record
from mss.directory.models import Patient
from mss.login_throttle import (
    Attempt,
    clear_failures,
    identifier_account,
    read_failures,
    record_failed_login,
    rules_of,
)
from mss.patients import (
    PASSWORD_RULES,
    Actor,
    LifecycleRefused,
    WrongActivationCode,
    activate_with_code,
    find_patient_by_identifier,
    oppose_with_code,
)
from mss.policy.login import decide_login_attempt
from portal.context import db_of, now_of, settings_of, source_of
from portal.pages import render


async def activation_form(request: web.Request) -> web.StreamResponse:
    return await render(
        request,
        "activation.html",
        {"title": "Activer mon compte", "rules": PASSWORD_RULES, "ins": ""},
    )


async def opposition_form(request: web.Request) -> web.StreamResponse:
    return await render(
        request, "opposition.html", {"title": "M'opposer à la création de mon compte", "ins": ""}
    )


async def activate(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    ins, code = str(form.get("ins", "")).strip(), str(form.get("code", ""))
    password, again = str(form.get("mot_de_passe", "")), str(form.get("confirmation", ""))
    context = {"title": "Activer mon compte", "rules": PASSWORD_RULES, "ins": ins}
    if password != again:
        return await render(
            request,
            "activation.html",
            {**context, "error": "Les deux mots de passe saisis sont différents."},
            status=400,
        )

    async def transition(session: AsyncSession, patient: Patient) -> None:
        await activate_with_code(
            session,
            patient,
            code,
            password,
            Actor("patient", patient.ins, patient.display_name, source_of(request)),
            now_of(request),
        )

    error, status = await _with_code(request, ins, transition)
    if error:
        return await render(request, "activation.html", {**context, "error": error}, status=status)
    return await render(
        request,
        "fait.html",
        {
            "title": "Compte activé",
            "sentence": "Votre compte est activé. Vous pouvez maintenant vous connecter avec votre "
            "numéro INS ou votre e-mail et le mot de passe que vous venez de choisir.",
            "login_link": True,
        },
    )


async def oppose(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    ins, code = str(form.get("ins", "")).strip(), str(form.get("code", ""))
    context = {"title": "M'opposer à la création de mon compte", "ins": ins}
    if form.get("confirme") != "oui":
        return await render(
            request,
            "opposition.html",
            {**context, "error": "Cochez la case pour confirmer votre opposition."},
            status=400,
        )

    async def transition(session: AsyncSession, patient: Patient) -> None:
        await oppose_with_code(
            session,
            patient,
            code,
            Actor("patient", patient.ins, patient.display_name, source_of(request)),
            now_of(request),
        )

    error, status = await _with_code(request, ins, transition)
    if error:
        return await render(request, "opposition.html", {**context, "error": error}, status=status)
    return await render(
        request,
        "fait.html",
        {
            "title": "Opposition enregistrée",
            "sentence": "Votre opposition est enregistrée : votre compte de messagerie santé "
            "ne sera pas "
            "ouvert et les professionnels ne pourront pas vous y écrire.",
        },
    )


Transition = Callable[[AsyncSession, Patient], Awaitable[None]]


async def _with_code(request: web.Request, ins: str, transition: Transition) -> tuple[str, int]:
    """Run a code-checked transition under the attempt throttle; returns (error sentence,
    status)."""
    db, now, rules = db_of(request), now_of(request), rules_of(settings_of(request))
    attempt = Attempt(identifier_account("activation", ins), source_of(request))
    async with db.read() as session:
        gate = decide_login_attempt(await read_failures(session, attempt), rules, now)
    if not gate:
        return gate.sentence_fr, 429
    patient_id: int | None = None
    try:
        async with db.write() as session:
            patient = (
                await find_patient_by_identifier(session, ins) if ins and "@" not in ins else None
            )
            if patient is None:
                raise WrongActivationCode()
            patient_id = patient.id
            await transition(session, patient)
    except WrongActivationCode as wrong:
        async with db.write() as session:
            after = await record_failed_login(session, attempt, rules, now)
            if patient_id is not None:
                record(
                    session,
                    "activation_failed",
                    actor_kind="patient",
                    actor=ins,
                    patient_id=patient_id,
                    source=source_of(request),
                )
        return f"{wrong.sentence} {after.sentence_fr}", 401
    except LifecycleRefused as refused:
        return refused.sentence, 409
    async with db.write() as session:
        await clear_failures(session, attempt, rules, now)
    return "", 200
