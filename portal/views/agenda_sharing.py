""" "Qui voit mon agenda": the patient (or a guardian, for a minor) chooses which authorised
professionals may read and add to the agenda: nobody (the default), every professional
authorised to read the record, or some chosen from the directory.

The change is asked of ``mss.policy.agenda.decide_agenda_sharing_change`` and stored by
``mss.agenda.sharing`` (an ``agenda.sharing_changed`` event on the history).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from dmp_bridge.consent_store import consent_facts
from mss.agenda.sharing import chosen_professionals, set_sharing, share_facts
from mss.errors import InvalidInput
from mss.policy.agenda import AgendaSharing, decide_agenda_sharing_change
from portal.context import db_of, now_of
from portal.pages import actor, redirect, render, signed_in
from portal.professionals import cards_for, find_card, search_professionals
from portal.record import refused, space_patient, viewer_of

PAGE = "/agenda/partage"
CHOICES = {
    AgendaSharing.NONE: "Personne (aucun professionnel ne voit l'agenda)",
    AgendaSharing.AUTHORISED: "Tous les professionnels autorisés à consulter le dossier",
    AgendaSharing.CHOSEN: "Seulement les professionnels que je choisis",
}
NOTICES = {
    "choix": "Votre choix est enregistré.",
    "ajoute": "{name} est ajouté aux professionnels qui voient l'agenda.",
    "retire": "{name} ne voit plus l'agenda.",
}
NOT_AUTHORISED = (
    "n'est pas autorisé à consulter le dossier : il ne verra l'agenda qu'une fois autorisé "
    "(page « Qui peut voir mon dossier »)."
)
UNKNOWN = "Ce professionnel n'a pas été trouvé dans l'annuaire : cherchez-le de nouveau."


async def _page(request: web.Request, status: int = 200, error: str = "") -> web.Response:
    query = " ".join(request.query.get("q", "").split())[:100]
    async with db_of(request).read() as session:
        patient = await space_patient(session, request)
        share = await share_facts(session, patient)
        consent = await consent_facts(session, patient)
        cards = await cards_for(session, share.chosen)
        results = await search_professionals(session, query) if query else []
        named = (
            await find_card(session, request.query.get("pro", ""))
            if "pro" in request.query
            else None
        )
    readers = consent.authorised | ({consent.treating_id_nat} if consent.treating_id_nat else set())
    readers -= consent.blocked
    chosen = sorted(cards.values(), key=lambda c: c.name.lower())
    sentence = NOTICES.get(request.query.get("fait", ""), "")
    return await render(
        request,
        "agenda_partage.html",
        {
            "title": "Qui voit mon agenda",
            "choices": {k.value: v for k, v in CHOICES.items()},
            "current": share.sharing.value,
            "chosen": chosen,
            "chosen_ids": {c.id_nat for c in chosen},
            "readers": readers,
            "not_authorised": NOT_AUTHORISED,
            "results": results,
            "q": query,
            "searched": "q" in request.query,
            "notice": sentence.format(name=named.name if named else "Ce professionnel"),
            "error": error,
        },
        status=status,
    )


@signed_in
async def sharing_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


async def _save(
    request: web.Request,
    sharing: AgendaSharing | None,
    chosen: list[str],
    done: str,
    pro: str = "",
) -> web.StreamResponse:
    """Store the choice (``sharing`` None: keep the current one; choosing someone while the
    agenda is shared with nobody shares it with the chosen)."""
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        decision = decide_agenda_sharing_change(await viewer_of(request).facts(session, patient))
        if not decision.allowed:
            return await refused(request, decision)
        current = (await share_facts(session, patient)).sharing
        if sharing is None:
            sharing = current
        elif (
            sharing is AgendaSharing.CHOSEN
            and done == "ajoute"
            and current is not AgendaSharing.NONE
        ):
            sharing = current
        try:
            await set_sharing(
                session,
                patient,
                sharing,
                chosen,
                actor=actor(request),
                now=now_of(request),
            )
        except InvalidInput as error:
            failure = f"Le choix n'est pas enregistré : {error}."
        else:
            params = {"fait": done, **({"pro": pro} if pro else {})}
            return redirect(f"{PAGE}?{urlencode(params)}")
    return await _page(request, 400, failure)


@signed_in
async def choose(request: web.Request) -> web.StreamResponse:
    """Nobody, every authorised professional, or those chosen."""
    form = await request.post()
    try:
        sharing = AgendaSharing(str(form.get("partage", "")))
    except ValueError:
        return await _page(request, 400, "Choisissez qui peut voir votre agenda.")
    async with db_of(request).read() as session:
        chosen = await chosen_professionals(session, (await space_patient(session, request)).id)
    return await _save(request, sharing, chosen, "choix")


@signed_in
async def change_professional(request: web.Request) -> web.StreamResponse:
    """Add a professional found in the directory to those chosen, or take one away."""
    form = await request.post()
    action = str(form.get("action", ""))
    async with db_of(request).read() as session:
        found = await find_card(session, str(form.get("id_nat", "")))
        chosen = await chosen_professionals(session, (await space_patient(session, request)).id)
    if found is None or action not in ("ajouter", "retirer"):
        return await _page(request, 400, UNKNOWN)
    if action == "ajouter":
        return await _save(
            request, AgendaSharing.CHOSEN, [*chosen, found.id_nat], "ajoute", found.id_nat
        )
    remaining = [i for i in chosen if i != found.id_nat]
    return await _save(request, None, remaining, "retire", found.id_nat)


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    (PAGE, "agenda_sharing", {"GET": sharing_page, "POST": choose}),
    (f"{PAGE}/professionnel", "agenda_sharing_professional", {"POST": change_professional}),
]
