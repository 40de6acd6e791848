"""A new conversation, the one a patient may open: with a pharmacy, to send a prescription."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.facts import mailbox_facts
from mss.directory.models import Mailbox
from mss.directory.store import find_patient_mailbox, pharmacy_mailboxes
from mss.mailbox.store import find_message
from mss.patients import audit
from mss.policy import RecipientFacts, decide_recipient
from mss.policy.attachment import PRESCRIPTION_TYPES, decide_patient_attachment
from portal.compose import Upload, build_message, one_line, sniff_type
from portal.context import db_of, now_of, visit
from portal.message_content import safe_filename
from portal.messages import Counterpart, Directory
from portal.pages import actor, redirect, render, signed_in
from portal.sending import message_id_for, sender_facts, submit
from portal.views.message import author_of, refused

MAX_FILES = 5
NO_FILE = "Joignez la photo ou le PDF de votre ordonnance."
NO_PHARMACY = "Choisissez la pharmacie à qui envoyer votre ordonnance."
NO_MAILBOX = "Cet espace n'a pas de messagerie : il n'est pas possible d'envoyer un message."


async def _pharmacies(session: AsyncSession, mailbox: Mailbox) -> list[Counterpart]:
    """The directory's pharmacy mailboxes this space may write to, as the policy decides."""
    me = await sender_facts(session, mailbox)
    directory = Directory(session)
    found = []
    for pharmacy in await pharmacy_mailboxes(session):
        facts = await mailbox_facts(session, pharmacy.address)
        if (
            facts is not None
            and decide_recipient(me, RecipientFacts(facts.address, True, facts)).allowed
        ):
            found.append(await directory.by_id(pharmacy.id))
    return found


async def _form(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    values: dict[str, str] | None = None,
) -> web.Response:
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        mailbox = await find_patient_mailbox(session, state.space.id)
        pharmacies = await _pharmacies(session, mailbox) if mailbox is not None else []
    context: dict[str, Any] = {
        "title": "Envoyer une ordonnance à une pharmacie",
        "pharmacies": pharmacies,
        "error": error,
        "values": values or {},
        "types": ", ".join(PRESCRIPTION_TYPES.values()),
        "accept": ",".join(PRESCRIPTION_TYPES),
        "has_mailbox": mailbox is not None,
    }
    return await render(request, "messages_nouveau.html", context, status=status)


@signed_in
async def new_message_form(request: web.Request) -> web.StreamResponse:
    return await _form(request)


def _uploads(form: Any) -> list[web.FileField]:
    return [
        item
        for item in form.getall("fichier", [])
        if isinstance(item, web.FileField) and item.filename
    ]


@signed_in
async def send_new_message(request: web.Request) -> web.StreamResponse:
    """Check each file with the attachment policy, then send through the gateway (pharmacy
    exception)."""
    state = visit(request)
    assert state.space is not None
    form = await request.post()
    values = {
        "pharmacie": str(form.get("pharmacie", "")).strip(),
        "objet": one_line(str(form.get("objet", ""))),
        "texte": str(form.get("texte", "")).strip(),
    }
    files = _uploads(form)
    if not values["pharmacie"]:
        return await _form(request, status=400, error=NO_PHARMACY, values=values)
    if not files:
        return await _form(request, status=400, error=NO_FILE, values=values)
    if len(files) > MAX_FILES:
        return await _form(
            request,
            status=400,
            values=values,
            error=f"Joignez au plus {MAX_FILES} fichiers à un message.",
        )
    uploads = []
    for item in files:
        data = item.file.read()
        detected = sniff_type(data)
        decision = decide_patient_attachment(detected, item.content_type or "", len(data))
        if not decision.allowed or detected is None:
            return await _form(
                request,
                status=400,
                values=values,
                error=f"« {safe_filename(item.filename)} » : {decision.sentence_fr}",
            )
        uploads.append(Upload(safe_filename(item.filename, detected), detected, data))
    async with db_of(request).read() as session:
        mailbox = await find_patient_mailbox(session, state.space.id)
        if mailbox is None:
            return await render(
                request,
                "refus.html",
                {"title": "Envoi impossible", "sentence": NO_MAILBOX},
                status=403,
            )
        me = await sender_facts(session, mailbox)
    message_id = message_id_for(request)
    text = values["texte"] or "Bonjour, veuillez trouver ci-joint mon ordonnance."
    raw = build_message(
        author_of(request, mailbox),
        values["pharmacie"],
        values["objet"] or "Ordonnance",
        text,
        message_id,
        now=now_of(request),
        uploads=uploads,
    )
    outcome = await submit(request, me, values["pharmacie"], raw)
    async with db_of(request).write() as session:
        if outcome.decision.allowed:
            audit(
                session,
                "message_sent",
                actor(request),
                state.space,
                target=values["pharmacie"],
                message_id=message_id,
                attachments=[u.filename for u in uploads],
            )
        else:
            audit(
                session,
                "message_refused",
                actor(request),
                state.space,
                target=values["pharmacie"],
                reason=outcome.decision.sentence_fr,
            )
    if not outcome.decision.allowed or outcome.receipt is None:
        return await refused(request, outcome, "Message refusé")
    async with db_of(request).read() as session:
        stored = await find_message(session, outcome.receipt.message_ids[0])
    if stored is not None and stored.conversation_id is not None:
        return redirect(f"/messages/conversation/{stored.conversation_id}?fait=envoye")
    return redirect("/messages/envoyes")
