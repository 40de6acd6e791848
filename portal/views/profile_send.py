"""Send the profile summary to a professional the patient chooses from the directory.

The hub writes the whole message (a fixed sentence and the PDF of ``mss.profile.pdf``) and
sends it through the one message path (``portal.sending.submit``) as a one-off document:
``mss.policy.patient_documents`` allows it although the patient does not open conversations,
and it opens none (``profile.summary_sent`` on the history).

The message is S/MIME signed by the hub on the patient's behalf, after the portal's strong
login, with the signing certificate the hub holds for the patient's mailbox address
(``mss.crypto.space_signing``, which says why): the signer's address is the From, so the
gateway verifies it (``smime=pass``) and the professional's client shows a valid signature
whose certificate says the hub's patient space signed it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.facts import mailbox_facts
from mss.directory.models import Mailbox
from mss.directory.store import find_patient_mailbox, find_professional_by_id_nat, personal_mailbox
from mss.errors import InvalidInput
from mss.patients import audit
from mss.policy import MailboxFacts, RecipientFacts, decide_recipient
from mss.policy.patient_documents import PROFILE_SUMMARY
from mss.profile.pdf import FontMissing
from portal.compose import Upload, build_message
from portal.context import db_of, now_of, visit
from portal.pages import actor, redirect, render, signed_in
from portal.professionals import ProfessionalCard, find_card, search_professionals
from portal.sending import message_id_for, sender_facts, space_signers_of, submit
from portal.views.message import author_of, refused
from portal.views.profile import summary_of

log = logging.getLogger(__name__)

PAGE = "/profil/envoyer"
FILE_NAME = "resume-profil-medical.pdf"
NO_MAILBOX = "Cet espace n'a pas de messagerie : il n'est pas possible d'envoyer le résumé."
NOT_SIGNED = "Le résumé ne peut pas être signé par le service pour le moment : réessayez plus tard."
NOT_REACHABLE = (
    "Ce professionnel n'a pas de messagerie de santé ouverte sur ce service : choisissez-en un "
    "autre."
)
TEXT = (
    "Bonjour,\n\n"
    "{name} vous envoie, depuis son espace santé, le résumé de son profil médical "
    "(allergies, antécédents, vaccinations, traitements) en pièce jointe (PDF). Ces "
    "informations sont déclarées par le patient et n'ont pas été vérifiées par un "
    "professionnel de santé.\n\n"
    "Ce message n'ouvre pas de conversation : si vous le souhaitez, vous pouvez écrire au "
    "patient depuis votre messagerie sécurisée.\n"
)


async def _reachable(
    session: AsyncSession, me: MailboxFacts, card: ProfessionalCard
) -> MailboxFacts | None:
    """The professional's personal mailbox, if the policy lets a summary go there."""
    professional = await find_professional_by_id_nat(session, card.id_nat)
    mailbox = await personal_mailbox(session, professional.id) if professional else None
    facts = await mailbox_facts(session, mailbox.address) if mailbox is not None else None
    if facts is None:
        return None
    wanted = RecipientFacts(facts.address, True, facts)
    return facts if decide_recipient(me, wanted, one_off=PROFILE_SUMMARY).allowed else None


async def _own_mailbox(session: AsyncSession, request: web.Request) -> Mailbox | None:
    space = visit(request).space
    assert space is not None
    return await find_patient_mailbox(session, space.id)


async def _form(request: web.Request, status: int = 200, error: str = "") -> web.Response:
    query = " ".join(request.query.get("q", "").split())[:100]
    results: list[ProfessionalCard] = []
    async with db_of(request).read() as session:
        mailbox = await _own_mailbox(session, request)
        if mailbox is not None and query:
            me = await sender_facts(session, mailbox)
            results = [
                c
                for c in await search_professionals(session, query)
                if await _reachable(session, me, c)
            ]
    return await render(
        request,
        "profil_envoyer.html",
        {
            "title": "Envoyer mon résumé à un professionnel",
            "q": query,
            "searched": "q" in request.query,
            "results": results,
            "has_mailbox": mailbox is not None,
            "error": error,
        },
        status=status,
    )


@signed_in
async def send_form(request: web.Request) -> web.StreamResponse:
    return await _form(request)


@signed_in
async def send_summary(request: web.Request) -> web.StreamResponse:
    """Build the PDF and the message, send it as a one-off document, record it."""
    state = visit(request)
    assert state.space is not None
    id_nat = str((await request.post()).get("id_nat", "")).strip()
    async with db_of(request).read() as session:
        mailbox = await _own_mailbox(session, request)
        if mailbox is None:
            return await _form(request, 403, NO_MAILBOX)
        me = await sender_facts(session, mailbox)
        card = await find_card(session, id_nat) if id_nat else None
        target = await _reachable(session, me, card) if card is not None else None
    if card is None or target is None:
        return await _form(request, 400, NOT_REACHABLE)
    try:
        pdf = await summary_of(request)
    except FontMissing as missing:
        return await _form(request, 503, f"Le résumé ne peut pas être créé : {missing.sentence}")
    message_id = message_id_for(request)
    raw = build_message(
        author_of(request, mailbox),
        target.address,
        f"Résumé du profil médical de {state.space.display_name}",
        TEXT.format(name=state.space.display_name),
        message_id,
        now=now_of(request),
        uploads=[Upload(FILE_NAME, "application/pdf", pdf)],
    )
    try:
        signed = await asyncio.to_thread(
            space_signers_of(request).sign, raw, mailbox.address, state.space.display_name
        )
    except InvalidInput:
        log.exception("cannot sign the profile summary of %s", mailbox.address)
        return await _form(request, 503, NOT_SIGNED)
    outcome = await submit(request, me, target.address, signed, one_off=PROFILE_SUMMARY)
    async with db_of(request).write() as session:
        if outcome.decision.allowed:
            audit(
                session,
                "profile.summary_sent",
                actor(request),
                state.space,
                target=target.address,
                message_id=message_id,
                id_nat=card.id_nat,
            )
        else:
            audit(
                session,
                "message_refused",
                actor(request),
                state.space,
                target=target.address,
                reason=outcome.decision.sentence_fr,
            )
    if not outcome.decision.allowed:
        return await refused(request, outcome, "Résumé non envoyé")
    return redirect(f"/profil?{urlencode({'fait': 'envoye', 'a': card.name})}")


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    (PAGE, "profile_send", {"GET": send_form, "POST": send_summary}),
]
