""" "Qui peut voir mon dossier": authorisations, blocks, the médecin traitant, break-glass and DMP
oppositions.

Each change goes through ``dmp_bridge.consent_store`` (which asks
``mss.policy.consent`` and leaves a ``consent_changed`` event on the
history) and comes back to the page with a sentence saying what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused
from dmp_bridge.consent_store import (
    AUTHORISED,
    BLOCKED,
    consent_choices,
    professional_consent_state,
    set_authorisation,
    set_block,
    set_break_glass_opposition,
    set_dmp_opposition,
    set_treating_doctor,
)
from mss.directory.models import Patient
from mss.directory.store import professional_by_id
from mss.policy.decision import OK, Decision
from mss.policy.patient_dossier import (
    UNKNOWN_PROFESSIONAL,
    decide_consent_target,
    decide_treating_doctor,
)
from portal.context import db_of
from portal.pages import redirect, render, signed_in
from portal.professionals import ProfessionalCard, cards_for, find_card, search_professionals
from portal.record import common, refused, space_patient, viewer_of

PAGE = "/dossier/acces"
NOTICES = {
    "autorise": "{name} peut maintenant consulter le dossier.",
    "retire": "{name} ne peut plus consulter le dossier (il peut toujours y déposer un document).",
    "bloque": "{name} est bloqué : il ne peut ni consulter le dossier ni y déposer de document.",
    "debloque": "{name} n'est plus bloqué.",
    "traitant": "{name} est désigné médecin traitant : il voit tous les documents, y compris ceux "
    "masqués aux professionnels.",
    "traitant-retire": "Il n'y a plus de médecin traitant désigné.",
    "urgence-opposee": "Votre opposition à l'accès en urgence est enregistrée : aucun "
    "professionnel "
    "non autorisé ne pourra consulter le dossier, même en urgence.",
    "urgence-permise": "Vous ne vous opposez plus à l'accès en urgence.",
    "dmp-oppose": "Votre opposition au dossier médical est enregistrée : plus personne ne peut le "
    "consulter ni y ajouter de document.",
    "dmp-rouvert": "Le dossier médical est de nouveau ouvert.",
}
ACTIONS = {
    "autoriser": "autorise",
    "retirer": "retire",
    "bloquer": "bloque",
    "debloquer": "debloque",
    "traitant": "traitant",
}
WITHDRAWN = {"retirer": AUTHORISED, "debloquer": BLOCKED}


@dataclass
class ConsentView:
    """What the page shows: the current choices and the search results with their state."""

    treating: ProfessionalCard | None = None
    authorised: list[ProfessionalCard] = field(default_factory=list)
    blocked: list[ProfessionalCard] = field(default_factory=list)
    break_glass_opposed: bool = False
    dmp_opposed: bool = False
    results: list[ProfessionalCard] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)  # idNat -> authorised, blocked


async def load_view(session: AsyncSession, patient: Patient, query: str) -> ConsentView:
    view = ConsentView()
    choices = await consent_choices(session, patient)
    if choices.treating_id_nat is not None:
        view.treating = await find_card(session, choices.treating_id_nat)
    view.states = choices.states
    cards = await cards_for(session, view.states)
    by_name = sorted(cards.values(), key=lambda c: c.name.lower())
    view.authorised = [c for c in by_name if view.states[c.id_nat] == AUTHORISED]
    view.blocked = [c for c in by_name if view.states[c.id_nat] == BLOCKED]
    view.break_glass_opposed = choices.break_glass_opposed
    view.dmp_opposed = choices.dmp_opposed
    view.results = await search_professionals(session, query) if query else []
    return view


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    query = " ".join(request.query.get("q", "").split())[:100]
    async with db_of(request).read() as session:
        patient = await space_patient(session, request)
        view = await load_view(session, patient, query)
        named = (
            await find_card(session, request.query.get("pro", ""))
            if request.query.get("pro")
            else None
        )
    sentence = NOTICES.get(request.query.get("fait", ""), "")
    return await render(
        request,
        "consentement.html",
        common(
            request,
            tab="acces",
            title="Qui peut voir mon dossier",
            v=view,
            q=query,
            searched="q" in request.query,
            notice=sentence.format(name=named.name if named else "Ce professionnel"),
            **extra,
        ),
        status=status,
    )


@signed_in
async def consent_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


def _back(done: str, id_nat: str = "", query: str = "") -> web.Response:
    params = {
        "fait": done,
        **({"pro": id_nat} if id_nat else {}),
        **({"q": query} if query else {}),
    }
    return redirect(f"{PAGE}?{urlencode(params)}")


async def _apply(session: AsyncSession, request: web.Request, action: str, id_nat: str) -> Decision:
    """Do ``action`` for ``id_nat``: OK when done, else the refusal (the professional chosen,
    or the consent engine's)."""
    patient = await space_patient(session, request)
    viewer = viewer_of(request)
    chosen = await find_card(session, id_nat)
    withdrawn = WITHDRAWN.get(action)  # the choice a withdrawal takes back
    recorded = (
        withdrawn is not None
        and await professional_consent_state(session, patient, id_nat) == withdrawn
    )
    target = decide_consent_target(
        chosen is not None, withdrawing=withdrawn is not None, recorded=recorded
    )
    if not target:
        return target
    try:
        if action in ("autoriser", "retirer"):
            await set_authorisation(
                session, viewer, patient, id_nat, authorised=action == "autoriser"
            )
        elif action in ("bloquer", "debloquer"):
            await set_block(session, viewer, patient, id_nat, blocked=action == "bloquer")
        else:
            assert chosen is not None and chosen.id is not None
            allowed = decide_treating_doctor(chosen.name, chosen.profession_code, chosen.profession)
            if not allowed:
                return allowed
            await set_treating_doctor(
                session, viewer, patient, await professional_by_id(session, chosen.id)
            )
    except DmpRefused as error:
        return error.decision
    return OK


async def _show_refusal(request: web.Request, refusal: Decision) -> web.Response:
    """A refusal of what the form asked (422: unknown professional, not a doctor) comes back on
    the page with its sentence; the consent engine's has a page of its own."""
    if refusal.status == 422:
        return await _page(request, 422, error=refusal.sentence_fr)
    return await refused(request, refusal)


@signed_in
async def change_professional(request: web.Request) -> web.StreamResponse:
    """Authorise, withdraw, block, unblock, or name médecin traitant one professional."""
    form = await request.post()
    action, id_nat = str(form.get("action", "")), str(form.get("id_nat", "")).strip()
    query = str(form.get("q", ""))[:100]
    if action not in ACTIONS or not id_nat:
        return await _show_refusal(request, UNKNOWN_PROFESSIONAL)
    async with db_of(request).write() as session:
        decision = await _apply(session, request, action, id_nat)
    if not decision:
        return await _show_refusal(request, decision)
    return _back(ACTIONS[action], id_nat, query)


@signed_in
async def remove_treating(request: web.Request) -> web.StreamResponse:
    """No médecin traitant any more."""
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        try:
            await set_treating_doctor(session, viewer_of(request), patient, None)
        except DmpRefused as error:
            refusal: Decision | None = error.decision
        else:
            refusal = None
    if refusal is not None:
        return await refused(request, refusal)
    return _back("traitant-retire")


async def _opposition(request: web.Request, which: str) -> web.StreamResponse:
    form = await request.post()
    choice = str(form.get("opposer", ""))
    if choice not in ("oui", "non"):
        return await _page(request, 400, error="Choisissez de vous opposer ou non.")
    if which == "dmp" and choice == "oui" and form.get("confirme") != "oui":
        return await render(
            request,
            "consentement_opposition.html",
            common(
                request,
                tab="acces",
                title="S'opposer au dossier médical",
                error="Cochez la case pour confirmer votre opposition.",
            ),
            status=400,
        )
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        change = set_break_glass_opposition if which == "urgence" else set_dmp_opposition
        try:
            await change(session, viewer_of(request), patient, choice == "oui")
        except DmpRefused as error:
            refusal: Decision | None = error.decision
        else:
            refusal = None
    if refusal is not None:
        return await refused(request, refusal)
    if which == "urgence":
        return _back("urgence-opposee" if choice == "oui" else "urgence-permise")
    return _back("dmp-oppose" if choice == "oui" else "dmp-rouvert")


@signed_in
async def break_glass(request: web.Request) -> web.StreamResponse:
    """Oppose emergency access in advance (``opposer=oui``), or stop opposing it."""
    return await _opposition(request, "urgence")


@signed_in
async def dmp_opposition_form(request: web.Request) -> web.StreamResponse:
    return await render(
        request,
        "consentement_opposition.html",
        common(request, tab="acces", title="S'opposer au dossier médical"),
    )


@signed_in
async def dmp_opposition(request: web.Request) -> web.StreamResponse:
    """Oppose the record (with a confirmation box), or reopen it."""
    return await _opposition(request, "dmp")


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    (PAGE, "dossier_consent", {"GET": consent_page}),
    (f"{PAGE}/professionnel", "dossier_consent_professional", {"POST": change_professional}),
    (f"{PAGE}/traitant/retirer", "dossier_consent_no_treating", {"POST": remove_treating}),
    (f"{PAGE}/urgence", "dossier_consent_break_glass", {"POST": break_glass}),
    (
        f"{PAGE}/opposition",
        "dossier_consent_dmp",
        {"GET": dmp_opposition_form, "POST": dmp_opposition},
    ),
]
