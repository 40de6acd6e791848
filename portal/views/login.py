"""Login in two steps (password, then a one-time code), logout and idle expiry."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record
from mss.directory.activity import record_activity
from mss.directory.models import Patient, PatientState
from mss.directory.store import patient_by_id
from mss.login_throttle import (
    Attempt,
    clear_failures,
    identifier_account,
    patient_account,
    read_failures,
    record_failed_login,
    rules_of,
)
from mss.patients import find_patient_by_identifier, rehash_patient_password, verify_secret
from mss.policy.login import decide_login_attempt
from mss.web import SERVICES
from portal import second_factor, sessions
from portal.context import db_of, idle_limit, now_of, settings_of, source_of, visit
from portal.pages import portal_target, redirect, render, signed_in

BAD_PASSWORD = "Identifiant ou mot de passe incorrect."
BAD_CODE = "Ce code n'est pas le bon."
NO_FACTOR = (
    "Aucun téléphone ni adresse e-mail n'est enregistré pour recevoir votre code de connexion. "
    "Adressez-vous à l'établissement qui a créé votre compte."
)
MOTIFS = {
    "inactivite": "Pour protéger vos données, vous avez été déconnecté après une période "
    "sans activité.",
    "deconnexion": "Vous êtes déconnecté. À bientôt.",
    "verrou": "",
}


def _audit_failure(
    session: AsyncSession, patient: Patient | None, request: web.Request, reason: str
) -> None:
    if patient is not None:
        record(
            session,
            "login_failed",
            actor_kind="patient",
            actor=patient.ins,
            patient_id=patient.id,
            source=source_of(request),
            actor_name=patient.display_name,
            reason=reason,
        )


async def login_form(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    if state.row is not None and state.row.stage == sessions.SIGNED_IN:
        return redirect("/")
    notice = MOTIFS.get(request.query.get("motif", ""), "")
    return await render(
        request, "connexion.html", {"title": "Connexion", "notice": notice, "identifier": ""}
    )


async def login_password(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    identifier, password = (
        str(form.get("identifiant", "")).strip(),
        str(form.get("mot_de_passe", "")),
    )
    db, now = db_of(request), now_of(request)

    async def again(error: str, status: int) -> web.Response:
        return await render(
            request,
            "connexion.html",
            {"title": "Connexion", "error": error, "identifier": identifier},
            status=status,
        )

    if not identifier or not password:
        return await again("Saisissez votre identifiant et votre mot de passe.", 400)
    rules = rules_of(settings_of(request))
    async with db.read() as session:
        patient = await find_patient_by_identifier(session, identifier)
        attempt = Attempt(
            patient_account(patient.id) if patient else identifier_account("id", identifier),
            source_of(request),
        )
        gate = decide_login_attempt(await read_failures(session, attempt), rules, now)
    if not gate:
        return await again(gate.sentence_fr, 429)  # locked or waiting: even the right password
    checked = await verify_secret(
        patient.password_hash if patient else None,
        password,
        account=patient_account(patient.id) if patient else "",
    )
    if not checked:
        async with db.write() as session:
            after = await record_failed_login(session, attempt, rules, now, patient=patient)
            _audit_failure(session, patient, request, "password")
        return await again(f"{BAD_PASSWORD} {after.sentence_fr}", 401)
    assert patient is not None
    if patient.state in (PatientState.CLOSED, PatientState.OPPOSED):
        what = "clôturé" if patient.state is PatientState.CLOSED else "refusé (opposition)"
        return await again(
            f"Ce compte a été {what} : il n'est plus possible de s'y connecter. Si vous avez "
            "changé d'avis, vous pouvez l'activer de nouveau depuis la page « Activer sans le "
            "courrier » (lien « Activer mon compte »).",
            403,
        )
    factor = second_factor.choose_factor(patient)
    if factor is None:
        return await again(NO_FACTOR, 403)
    async with db.write() as session:
        if checked.needs_rehash:
            await rehash_patient_password(session, patient, password)
        state = visit(request)
        token, row = await sessions.rotate(
            session,
            state.row,
            now,
            source_of(request),
            stage=sessions.SECOND_FACTOR,
            patient_id=patient.id,
            factor=factor,
        )
        code = second_factor.issue_code(row, now) if factor != "totp" else None
    state.new_token, state.row = token, row
    if code is not None:
        await second_factor.send_code(
            settings_of(request), request.app[SERVICES], row, patient, code
        )
    return redirect("/connexion/code")


async def _half_signed_in(request: web.Request) -> tuple[sessions.PortalSession, Patient] | None:
    row = visit(request).row
    if row is None or row.stage != sessions.SECOND_FACTOR or row.patient_id is None:
        return None
    async with db_of(request).read() as session:
        patient = await patient_by_id(session, row.patient_id)
    return (row, patient) if patient is not None else None


async def _code_page(
    request: web.Request,
    row: sessions.PortalSession,
    patient: Patient,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> web.Response:
    return await render(
        request,
        "code.html",
        {
            "title": "Code de connexion",
            "factor": row.factor,
            "error": error,
            "notice": notice,
            "where": second_factor.where_sent(row, patient),
        },
        status=status,
    )


async def code_form(request: web.Request) -> web.StreamResponse:
    found = await _half_signed_in(request)
    if found is None:
        return redirect("/connexion")
    return await _code_page(request, *found)


async def code_submit(request: web.Request) -> web.StreamResponse:
    found = await _half_signed_in(request)
    if found is None:
        return redirect("/connexion")
    row, patient = found
    code = str((await request.post()).get("code", ""))
    db, now, rules = db_of(request), now_of(request), rules_of(settings_of(request))
    attempt = Attempt(patient_account(patient.id), source_of(request))
    async with db.read() as session:
        gate = decide_login_attempt(await read_failures(session, attempt), rules, now)
    if not gate:
        return await _code_page(request, row, patient, error=gate.sentence_fr, status=429)
    if second_factor.code_expired(row, now):
        return await _code_page(
            request,
            row,
            patient,
            status=400,
            error="Ce code a expiré : demandez-en un nouveau avec le bouton ci-dessous.",
        )
    if not second_factor.code_matches(row, patient, code, now):
        async with db.write() as session:
            after = await record_failed_login(session, attempt, rules, now, patient=patient)
            _audit_failure(session, patient, request, "code")
        return await _code_page(
            request, row, patient, error=f"{BAD_CODE} {after.sentence_fr}", status=401
        )
    spent = await second_factor.spend_code(db, row, patient, code, now)  # once only (RFC 6238 §5.2)
    if not spent:
        async with db.write() as session:
            _audit_failure(session, patient, request, "code_reused")
        return await _code_page(request, row, patient, error=spent.sentence_fr, status=401)
    async with db.write() as session:
        await clear_failures(session, attempt, rules, now)
        await sessions.purge_idle(session, now, idle_limit(request))
        token, new_row = await sessions.rotate(
            session,
            row,
            now,
            source_of(request),
            stage=sessions.SIGNED_IN,
            patient_id=patient.id,
            space_patient_id=patient.id,
            factor=row.factor,
        )
        record(
            session,
            "login",
            actor_kind="patient",
            actor=patient.ins,
            patient_id=patient.id,
            source=source_of(request),
            actor_name=patient.display_name,
            factor=row.factor,
        )
        await record_activity(session, now.date(), patient_id=patient.id)  # retention: once a day
    state = visit(request)
    state.new_token, state.row = token, new_row
    return redirect("/")


async def code_resend(request: web.Request) -> web.StreamResponse:
    found = await _half_signed_in(request)
    if found is None:
        return redirect("/connexion")
    row, patient = found
    now = now_of(request)
    if row.factor == "totp":
        return await _code_page(
            request, row, patient, error="Votre code se lit dans votre application."
        )
    if row.code_sent_at is not None and now - row.code_sent_at < second_factor.RESEND_AFTER:
        return await _code_page(
            request,
            row,
            patient,
            status=429,
            error="Un code vient d'être envoyé : attendez 30 secondes "
            "avant d'en demander un autre.",
        )
    async with db_of(request).write() as session:
        fresh = await sessions.current(session, row)
        if fresh is None:
            return redirect("/connexion")
        code = second_factor.issue_code(fresh, now)
    await second_factor.send_code(settings_of(request), request.app[SERVICES], fresh, patient, code)
    return await _code_page(
        request, fresh, patient, notice="Un nouveau code vient de vous être envoyé."
    )


@signed_in
async def logout(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.row is not None and state.person is not None
    async with db_of(request).write() as session:
        found = await sessions.current(session, state.row)
        if found is not None:
            await session.delete(found)
        record(
            session,
            "logout",
            actor_kind="patient",
            actor=state.person.ins,
            patient_id=state.person.id,
            source=source_of(request),
            actor_name=state.person.display_name,
        )
    state.row, state.clear_cookie = None, True
    return redirect("/connexion?motif=deconnexion")


async def session_expired(request: web.Request) -> web.StreamResponse:
    """Where the idle script leads: the session is over unless the server saw activity since."""
    state = visit(request)
    if state.row is not None and state.row.stage == sessions.SIGNED_IN:
        return redirect("/")
    return await render(request, "expiree.html", {"title": "Session terminée"})


@signed_in
async def keep_alive(request: web.Request) -> web.StreamResponse:
    """The warning's “Rester connecté” button: the request itself renews the session."""
    return redirect(await portal_target(request, str((await request.post()).get("suite", "/"))))
