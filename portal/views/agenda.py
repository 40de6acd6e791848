"""The agenda pages: appointments (convocations and the patient's own), answers, .ics, health
reminders."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.agenda import store
from mss.agenda.models import Appointment
from mss.agenda.replies import ANSWERS, answer_convocation
from mss.agenda.sharing import share_facts
from mss.directory.store import patient_by_id
from mss.errors import InvalidInput
from mss.policy.agenda import AgendaSharing
from mss.web import SERVICES
from portal.context import db_of, now_of, settings_of, visit
from portal.messages import Directory
from portal.pages import actor, redirect, render, signed_in

PARIS = ZoneInfo("Europe/Paris")
_TIME = re.compile(r"([01]?\d|2[0-3])[:hH]([0-5]\d)")
NOTICES = {
    "ajoute": "Le rendez-vous est ajouté à votre agenda.",
    "supprime": "Le rendez-vous est supprimé.",
    "accepte": "Votre réponse « j'accepte » a été envoyée à l'organisateur.",
    "refuse": "Votre réponse « je ne viendrai pas » a été envoyée à l'organisateur.",
    "rappel": "Le rappel est enregistré : vous serez prévenu le jour venu.",
    "rappel-fait": "Le rappel est marqué comme fait.",
    "rappel-supprime": "Le rappel est supprimé.",
}
SHARING_LABELS = {
    AgendaSharing.NONE: "personne",
    AgendaSharing.AUTHORISED: "les professionnels autorisés",
    AgendaSharing.CHOSEN: "les professionnels choisis",
}
RESPONSE_LABELS = {
    "needs-action": "En attente de votre réponse",
    "accepted": "Vous avez accepté",
    "declined": "Vous avez décliné",
}


def _space_id(request: web.Request) -> int:
    state = visit(request)
    assert state.space is not None
    return state.space.id


def _number(request: web.Request, name: str = "id") -> int:
    text = request.match_info[name]
    if not text.isdigit():
        raise web.HTTPNotFound()
    return int(text)


def _moment(day: str, time: str) -> dt.datetime:
    """A Paris date (AAAA-MM-JJ) and time (HH:MM) as an aware UTC datetime."""
    try:
        date = dt.date.fromisoformat(day.strip())
    except ValueError:
        raise InvalidInput("la date n'a pas été comprise (jj/mm/aaaa)") from None
    found = _TIME.fullmatch(time.strip())
    if found is None:
        raise InvalidInput("l'heure n'a pas été comprise (par exemple 14:30)")
    local = dt.datetime.combine(
        date, dt.time(int(found.group(1)), int(found.group(2))), tzinfo=PARIS
    )
    return local.astimezone(dt.UTC)


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    now = now_of(request)
    async with db_of(request).read() as session:
        view = await store.agenda_of(session, _space_id(request), now)
        space = await patient_by_id(session, _space_id(request))
        assert space is not None
        sharing = (await share_facts(session, space)).sharing
    notice = NOTICES.get(request.query.get("fait", ""), "")
    return await render(
        request,
        "agenda.html",
        {
            "title": "Mon agenda",
            "view": view,
            "sharing_label": SHARING_LABELS[sharing],
            "notice": notice,
            "responses": RESPONSE_LABELS,
            "kinds": store.REMINDER_KINDS,
            "today": now.astimezone(PARIS).date(),
            "form": {},
            **extra,
        },
        status=status,
    )


@signed_in
async def agenda_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@signed_in
async def add_appointment(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = {k: str(form.get(k, "")) for k in ("date", "debut", "fin", "objet", "lieu", "avec")}
    try:
        starts_at = _moment(values["date"], values["debut"])
        ends_at = (
            _moment(values["date"], values["fin"])
            if values["fin"].strip()
            else starts_at + dt.timedelta(hours=1)
        )
        async with db_of(request).write() as session:
            await store.add_own_appointment(
                session,
                settings_of(request),
                _space_id(request),
                starts_at=starts_at,
                ends_at=ends_at,
                summary=values["objet"],
                location=values["lieu"],
                with_whom=values["avec"],
                now=now_of(request),
            )
    except InvalidInput as error:
        return await _page(
            request, 400, error=f"Le rendez-vous n'a pas été ajouté : {error}.", form=values
        )
    return redirect("/agenda?fait=ajoute")


async def _appointment(request: web.Request) -> Appointment:
    async with db_of(request).read() as session:
        found = await store.appointment_of(session, _space_id(request), _number(request))
    if found is None:
        raise web.HTTPNotFound()
    return found


async def organiser_name(session: AsyncSession, appointment: Appointment) -> str:
    """Who organises it, as the directory names the sender (the hospital's name rather than its
    ``convocations@`` address), else the name the invitation gave, else its address."""
    if appointment.organizer:
        known = await Directory(session).by_address(appointment.organizer)
        if known.known:
            return known.organisation or known.name
    return appointment.organizer_name or appointment.organizer


@signed_in
async def appointment_page(request: web.Request) -> web.StreamResponse:
    appointment = await _appointment(request)
    async with db_of(request).read() as session:
        organiser = await organiser_name(session, appointment)
    return await render(
        request,
        "agenda_rdv.html",
        {
            "title": appointment.summary or "Rendez-vous",
            "a": appointment,
            "organiser": organiser,
            "responses": RESPONSE_LABELS,
            "over": appointment.ends_at <= now_of(request),
            "error": request.query.get("erreur", "")[:300],
        },
    )


@signed_in
async def answer(request: web.Request) -> web.StreamResponse:
    appointment = await _appointment(request)
    choice = str((await request.post()).get("reponse", ""))
    if choice not in ANSWERS:
        raise web.HTTPBadRequest(text="réponse inconnue")
    state = visit(request)
    assert state.space is not None and state.person is not None
    who = actor(request)
    sent = await answer_convocation(
        db_of(request),
        settings_of(request),
        request.app[SERVICES],
        patient=state.space,
        appointment_id=appointment.id,
        partstat=ANSWERS[choice],
        actor=who.ident,
        actor_kind=who.kind,
        now=now_of(request),
    )
    if not sent.decision:
        return await render(
            request,
            "agenda_rdv.html",
            {
                "title": appointment.summary or "Rendez-vous",
                "a": appointment,
                "responses": RESPONSE_LABELS,
                "over": appointment.ends_at <= now_of(request),
                "error": f"Votre réponse n'a pas pu être envoyée : {sent.decision.sentence_fr}.",
            },
            status=409,
        )
    return redirect(f"/agenda?fait={'accepte' if ANSWERS[choice] == 'ACCEPTED' else 'refuse'}")


@signed_in
async def download_ics(request: web.Request) -> web.StreamResponse:
    appointment = await _appointment(request)
    return web.Response(
        body=store.appointment_ics(appointment, now_of(request)).encode(),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="rendez-vous.ics"'},
    )


@signed_in
async def remove_appointment(request: web.Request) -> web.StreamResponse:
    async with db_of(request).write() as session:
        removed = await store.remove_own_appointment(session, _space_id(request), _number(request))
    if not removed:
        raise web.HTTPNotFound()
    return redirect("/agenda?fait=supprime")


@signed_in
async def add_reminder(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = {k: str(form.get(k, "")) for k in ("type", "nom", "echeance", "note")}
    try:
        try:
            due_on = dt.date.fromisoformat(values["echeance"].strip())
        except ValueError:
            raise InvalidInput("la date d'échéance n'a pas été comprise") from None
        async with db_of(request).write() as session:
            await store.add_health_reminder(
                session,
                _space_id(request),
                kind=values["type"],
                label=values["nom"],
                due_on=due_on,
                note=values["note"],
            )
    except InvalidInput as error:
        return await _page(
            request, 400, error=f"Le rappel n'a pas été enregistré : {error}.", reminder=values
        )
    return redirect("/agenda?fait=rappel")


@signed_in
async def reminder_done(request: web.Request) -> web.StreamResponse:
    async with db_of(request).write() as session:
        changed = await store.set_reminder_done(session, _space_id(request), _number(request))
    if not changed:
        raise web.HTTPNotFound()
    return redirect("/agenda?fait=rappel-fait")


@signed_in
async def remove_reminder(request: web.Request) -> web.StreamResponse:
    async with db_of(request).write() as session:
        removed = await store.remove_health_reminder(session, _space_id(request), _number(request))
    if not removed:
        raise web.HTTPNotFound()
    return redirect("/agenda?fait=rappel-supprime")


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("/agenda", "agenda", {"GET": agenda_page}),
    ("/agenda/rendez-vous", "agenda_add", {"POST": add_appointment}),
    ("/agenda/rendez-vous/{id}", "agenda_entry", {"GET": appointment_page}),
    ("/agenda/rendez-vous/{id}/reponse", "agenda_answer", {"POST": answer}),
    ("/agenda/rendez-vous/{id}/ics", "agenda_ics", {"GET": download_ics}),
    ("/agenda/rendez-vous/{id}/supprimer", "agenda_remove", {"POST": remove_appointment}),
    ("/agenda/rappels", "agenda_reminder_add", {"POST": add_reminder}),
    ("/agenda/rappels/{id}/fait", "agenda_reminder_done", {"POST": reminder_done}),
    ("/agenda/rappels/{id}/supprimer", "agenda_reminder_remove", {"POST": remove_reminder}),
]
