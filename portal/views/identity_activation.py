"""Activating an account without the letter: INS + birth date, then a code sent to the phone or
e-mail on file, then a password.

The same proof serves the changes of mind: a person who opposed the account activates it after
all, and a closed account is reopened within its retention; both are confirmed by a ticked box
on the code's page. Which of them applies, and every refusal, are ``mss.policy.lifecycle``
decisions; the one-time code is the login's (``portal.second_factor``), kept on a session of its
own stage (``activation``), and every wrong try counts in ``mss.login_throttle``.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record
from mss.directory.models import Patient
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
from mss.patients import (
    PASSWORD_RULES,
    Actor,
    LifecycleRefused,
    activate_with_identity,
    find_patient_by_identifier,
    identity_outcome,
)
from mss.policy.lifecycle import (
    NO_CONTACT_ON_FILE,
    ProofOutcome,
    decide_confirmation,
    decide_identity,
    decide_new_password,
    decide_sent_code,
    french_date,
    reopening_deadline,
)
from mss.policy.login import decide_login_attempt
from mss.web import SERVICES
from portal import second_factor, sessions
from portal.clock import PARIS
from portal.context import db_of, now_of, settings_of, source_of, visit
from portal.pages import redirect, render

STAGE = "activation"  # a session that proved INS and birth date, waiting for the sent code
PATH = "/activation/sans-courrier"
TITLE = "Activer sans le courrier"
DONE = {
    ProofOutcome.ACTIVATE: (
        "Compte activé",
        "Votre compte est activé. Vous pouvez maintenant vous connecter avec votre numéro INS "
        "ou votre e-mail et le mot de passe que vous venez de choisir.",
    ),
    ProofOutcome.WITHDRAW_OPPOSITION: (
        "Opposition retirée, compte activé",
        "Votre opposition est retirée et votre compte est activé : les professionnels de santé "
        "peuvent de nouveau vous écrire. Connectez-vous avec le mot de passe que vous venez de "
        "choisir.",
    ),
    ProofOutcome.REOPEN: (
        "Compte rouvert",
        "Votre compte est rouvert : vous retrouvez vos messages et les professionnels de santé "
        "peuvent de nouveau vous écrire. Connectez-vous avec le mot de passe que vous venez de "
        "choisir.",
    ),
}


def parse_birth_date(text: str) -> dt.date | None:
    """``1985-03-12`` (a date field) or ``12/03/1985`` (typed); None when it is neither."""
    text = text.strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


async def identity_form(request: web.Request) -> web.StreamResponse:
    return await render(
        request, "activation_identite.html", {"title": TITLE, "ins": "", "born": ""}
    )


async def identity_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    ins, born_text = str(form.get("ins", "")).strip(), str(form.get("naissance", ""))
    context = {"title": TITLE, "ins": ins, "born": born_text}

    async def again(error: str, status: int) -> web.Response:
        return await render(
            request, "activation_identite.html", {**context, "error": error}, status=status
        )

    born = parse_birth_date(born_text)
    if not ins or born is None:
        return await again(
            "Saisissez votre numéro INS et votre date de naissance (par exemple 12/03/1985).", 400
        )
    db, now, settings = db_of(request), now_of(request), settings_of(request)
    rules = rules_of(settings)
    attempt = Attempt(identifier_account("activation-identity", ins), source_of(request))
    async with db.read() as session:
        gate = decide_login_attempt(await read_failures(session, attempt), rules, now)
        patient = await find_patient_by_identifier(session, ins) if "@" not in ins else None
    if not gate:
        return await again(gate.sentence_fr, 429)
    identity = decide_identity(patient is not None and patient.birth_date == born)
    if not identity:
        async with db.write() as session:
            after = await record_failed_login(session, attempt, rules, now)
            if patient is not None:
                _audit(session, "activation_identity_failed", patient, request)
        return await again(f"{identity.sentence_fr} {after.sentence_fr}", 401)
    assert patient is not None
    decision, _outcome = identity_outcome(settings, patient, now)
    if not decision:
        return await again(decision.sentence_fr, 409)
    factor = second_factor.choose_sent_factor(patient)
    if factor is None:
        return await again(NO_CONTACT_ON_FILE.sentence_fr, 409)
    async with db.write() as session:
        await clear_failures(session, attempt, rules, now)
        token, row = await sessions.rotate(
            session,
            visit(request).row,
            now,
            source_of(request),
            stage=STAGE,
            patient_id=patient.id,
            factor=factor,
        )
        code = second_factor.issue_code(row, now)
        _audit(session, "activation_identity_checked", patient, request, factor=factor)
    state = visit(request)
    state.new_token, state.row = token, row
    await second_factor.send_code(
        settings, request.app[SERVICES], row, patient, code, purpose="activation"
    )
    return redirect(f"{PATH}/code")


async def _proving(request: web.Request) -> tuple[sessions.PortalSession, Patient] | None:
    row = visit(request).row
    if row is None or row.stage != STAGE or row.patient_id is None:
        return None
    async with db_of(request).read() as session:
        patient = await patient_by_id(session, row.patient_id)
    return (row, patient) if patient is not None else None


async def _code_page(
    request: web.Request,
    row: sessions.PortalSession,
    patient: Patient,
    error: str = "",
    status: int = 200,
) -> web.Response:
    settings = settings_of(request)
    decision, outcome = identity_outcome(settings, patient, now_of(request))
    reopen_until = ""
    if outcome is ProofOutcome.REOPEN and patient.closed_at is not None:
        until = reopening_deadline(patient.closed_at, settings.retention.closed_account_days)
        reopen_until = french_date(until.astimezone(PARIS).date())
    closed_on = french_date(patient.closed_at.astimezone(PARIS).date()) if patient.closed_at else ""
    return await render(
        request,
        "activation_code.html",
        {
            "title": TITLE,
            "where": second_factor.where_sent(row, patient),
            "outcome": outcome.value if outcome else "",
            "closed_on": closed_on,
            "reopen_until": reopen_until,
            "rules": PASSWORD_RULES,
            "error": error or ("" if decision else decision.sentence_fr),
        },
        status=status,
    )


async def code_form(request: web.Request) -> web.StreamResponse:
    found = await _proving(request)
    if found is None:
        return redirect(PATH)
    return await _code_page(request, *found)


async def code_submit(request: web.Request) -> web.StreamResponse:
    found = await _proving(request)
    if found is None:
        return redirect(PATH)
    row, patient = found
    form = await request.post()
    code = str(form.get("code", ""))
    password, again = str(form.get("mot_de_passe", "")), str(form.get("confirmation", ""))
    db, now, settings = db_of(request), now_of(request), settings_of(request)
    rules = rules_of(settings)
    attempt = Attempt(patient_account(patient.id), source_of(request))
    async with db.read() as session:
        gate = decide_login_attempt(await read_failures(session, attempt), rules, now)
    if not gate:
        return await _code_page(request, row, patient, gate.sentence_fr, 429)
    decision, outcome = identity_outcome(settings, patient, now)
    if not decision or outcome is None:
        return await _code_page(request, row, patient, decision.sentence_fr, 409)
    sent = decide_sent_code(
        second_factor.code_matches(row, patient, code, now), row.code_expires_at, now
    )
    if not sent:
        if sent.reason == "code_expired":
            return await _code_page(request, row, patient, sent.sentence_fr, 401)
        async with db.write() as session:
            after = await record_failed_login(session, attempt, rules, now, patient=patient)
            _audit(session, "activation_failed", patient, request, proof="identity")
        return await _code_page(
            request, row, patient, f"{sent.sentence_fr} {after.sentence_fr}", 401
        )
    for check in (
        decide_confirmation(outcome, form.get("confirme") == "oui"),
        decide_new_password(password, patient.ins),
    ):
        if not check:
            return await _code_page(request, row, patient, check.sentence_fr, check.status)
    if password != again:
        return await _code_page(
            request, row, patient, "Les deux mots de passe saisis sont différents.", 400
        )
    spent = await second_factor.spend_code(db, row, patient, code, now)  # once only
    if not spent:
        return await _code_page(request, row, patient, spent.sentence_fr, 401)
    try:
        async with db.write() as session:
            current = await patient_by_id(session, patient.id, for_update=True)
            assert current is not None
            done = await activate_with_identity(
                session,
                settings,
                current,
                password,
                Actor("patient", current.ins, current.display_name, source_of(request)),
                now,
            )
            await clear_failures(session, attempt, rules, now)
    except LifecycleRefused as refused:
        return await _code_page(request, row, patient, refused.sentence, 409)
    await sessions.end(db, row)
    state = visit(request)
    state.row, state.clear_cookie = None, True
    title, sentence = DONE[done]
    return await render(
        request, "fait.html", {"title": title, "sentence": sentence, "login_link": True}
    )


def _audit(
    session: AsyncSession, action: str, patient: Patient, request: web.Request, **detail: str
) -> None:
    record(
        session,
        action,
        actor_kind="patient",
        actor=patient.ins,
        patient_id=patient.id,
        source=source_of(request),
        actor_name=patient.display_name,
        **detail,
    )
