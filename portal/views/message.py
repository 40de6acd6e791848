"""One message: read it (marks \\Seen, audited, read receipt once), download an attachment, reply.

Attachments that carry a document hidden in the DMP from whoever is viewing
(see ``mss.policy.message_attachments``) are neither listed nor served.
"""

from __future__ import annotations

import dataclasses
import email.utils
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.conversations import ConversationState, find_conversation
from mss.delivery_status import record_status
from mss.directory.models import Mailbox
from mss.mailbox.headers import first, split_headers
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import parse_flags
from mss.patients import audit, audit_committed
from mss.policy import Decision
from mss.policy.dmp_filing import MdnFacts
from mss.policy.message_attachments import WithheldAttachments
from mss.policy.read_receipt import decide_read_receipt
from mss.smtp_gateway import Accepted
from portal.compose import Author, build_message, references_of, reply_subject
from portal.context import (
    Correspondents,
    correspondents_of,
    db_of,
    now_of,
    settings_of,
    visit,
)
from portal.message_content import (
    Attachment,
    content_disposition,
    decode_part,
    find_part,
    shown_message,
)
from portal.messages import (
    MDN_SENT,
    SEEN,
    Counterpart,
    Directory,
    Located,
    add_flags,
    local_time,
    locate,
    remove_flags,
)
from portal.pages import actor, redirect, render, signed_in
from portal.read_receipt import build_displayed_mdn
from portal.record import viewer_of
from portal.sending import (
    message_id_for,
    reply_decision,
    reply_facts,
    reply_target,
    space_sender_facts,
    submit,
)
from portal.signatures import SignatureLine, signature_line
from portal.withheld import withheld_attachments

EMPTY_REPLY = "Écrivez votre réponse avant de l'envoyer."


async def not_found(request: web.Request, what: str = "Ce message") -> web.Response:
    """The same answer for a missing id and for another person's: nothing is revealed."""
    return await render(
        request,
        "refus.html",
        {
            "title": "Introuvable",
            "sentence": f"{what} n'existe pas dans cet espace, ou vous n'y avez pas accès.",
        },
        status=404,
    )


def author_of(request: web.Request, mailbox: Mailbox) -> Author:
    """The space's mailbox sends; a guardian's name says who wrote for the minor."""
    state = visit(request)
    assert state.person is not None and state.space is not None
    guardian = state.person.display_name if state.person.id != state.space.id else ""
    return Author(mailbox.address, state.space.display_name, guardian)


async def _located(
    session: AsyncSession, request: web.Request
) -> tuple[Mailbox | None, Located | None]:
    """The entry of the URL in the space's own mailbox, with that mailbox; (None, None)
    otherwise."""
    state = visit(request)
    assert state.space is not None
    found = await locate(session, state.space.id, int(request.match_info["entry"]))
    return found if found is not None else (None, None)


def _mdn_facts(located: Located) -> MdnFacts:
    """RFC 8098 facts; the sender's address is the From the gateway bound to the login or
    signature."""
    message = located.message
    head_end = (message.bodystructure.get("parts") or {}).get("b", len(message.raw))
    fields = split_headers(message.raw[:head_end])
    asked = [value for name, value in fields if name.lower() == "disposition-notification-to"]
    addresses = tuple(address for _name, address in email.utils.getaddresses(asked) if address)
    sender = message.signer_address if message.signature_status == "valid" else None
    return MdnFacts(
        addresses,
        sender or message.from_address,
        first(fields, "Auto-Submitted") or "",
        (message.bodystructure.get("parts") or {}).get("type", ""),
    )


@signed_in
async def read(request: web.Request) -> web.StreamResponse:
    """Show a message; the first reading marks it \\Seen and may send the read receipt asked for.

    One read session gathers what the page shows; the write transaction that follows holds
    only the audit line once the message is \\Seen and no receipt is due.
    """
    async with db_of(request).read() as session:
        mailbox, located = await _located(session, request)
        facts = (
            await _page_facts(session, request, mailbox, located)
            if mailbox is not None and located is not None
            else None
        )
    if mailbox is None or located is None or facts is None:
        return await not_found(request)
    receipt_to = await _record_reading(request, mailbox, located)
    if receipt_to is not None:
        await _send_receipt(request, mailbox, located, receipt_to)
    return await _render(
        request,
        located,
        facts,
        notice="Votre réponse a été envoyée." if request.query.get("fait") == "envoye" else "",
    )


async def _record_reading(request: web.Request, mailbox: Mailbox, located: Located) -> str | None:
    """Audit the reading, set \\Seen and claim the read receipt; the address to send it to, or None.

    The flags read with the entry decide whether anything but the audit line is written: an
    entry already \\Seen with no receipt due gets the audit line alone. Otherwise the flags are
    changed on their committed value (``store_flags``), which also decides the receipt once.
    """
    state = visit(request)
    assert state.space is not None
    mdn = _mdn_facts(located)
    flags = parse_flags(located.entry.flags)
    reading = {
        "target": located.message.from_address,
        "message_id": located.message.message_id_header,
        "stored_message_id": located.message.id,
    }
    if (
        SEEN in flags
        and decide_read_receipt(mdn, received=located.received, already_answered=MDN_SENT in flags)
        is None
    ):
        # Nothing but the audit line: it shares a transaction with the other readings of now.
        await audit_committed(
            db_of(request), "message_read", actor(request), state.space, **reading
        )
        return None
    first_reading = SEEN not in flags
    async with db_of(request).write() as session:
        flags = await add_flags(session, mailbox.id, located, [SEEN])
        if first_reading and located.received:
            # the sender's status of this message (``mss.delivery_status``), where it keeps one
            await record_status(
                session,
                message_id=located.message.message_id_header,
                recipient=mailbox.address,
                state="displayed",
            )
        receipt_to = decide_read_receipt(
            mdn, received=located.received, already_answered=MDN_SENT in flags
        )
        if receipt_to is not None:
            await add_flags(session, mailbox.id, located, [MDN_SENT])  # claimed: sent once
        audit(session, "message_read", actor(request), state.space, **reading)
    return receipt_to


async def _send_receipt(request: web.Request, mailbox: Mailbox, located: Located, to: str) -> None:
    """The "displayed" MDN through the gateway; a temporary failure frees it for the next
    reading."""
    state = visit(request)
    assert state.space is not None
    message_id = message_id_for(request)
    raw = build_displayed_mdn(
        author_of(request, mailbox),
        to,
        located.message,
        message_id,
        reporting_host=settings_of(request).hostname,
        now=now_of(request),
    )
    outcome = await submit(request, space_sender_facts(mailbox, state.space), to, raw)
    async with db_of(request).write() as session:
        if outcome.decision.allowed:
            audit(
                session,
                "mdn_sent",
                actor(request),
                state.space,
                target=to,
                message_id=message_id,
                original_message_id=located.message.message_id_header,
            )
        elif outcome.decision.smtp_code < 500:
            await remove_flags(session, mailbox.id, located, [MDN_SENT])
        else:
            audit(
                session,
                "mdn_refused",
                actor(request),
                state.space,
                target=to,
                reason=outcome.decision.sentence_fr,
            )


@dataclass
class PageFacts:
    """What the message page shows besides the message itself, read from the database."""

    sender: Counterpart
    recipients: list[Counterpart]
    signature: SignatureLine | None
    closed: bool
    professional: Counterpart
    decision: Decision | None  # would a reply be accepted (received messages only)


async def _page_facts(
    session: AsyncSession, request: web.Request, mailbox: Mailbox, located: Located
) -> PageFacts:
    """Sender, recipients, signature, conversation and reply decision: the directory read once
    per message and process (``Correspondents``), the conversation and the decision each time."""
    state = visit(request)
    assert state.space is not None
    message = located.message
    conversation = located.conversation
    if conversation is None and message.conversation_id is not None:
        conversation = await find_conversation(session, message.conversation_id)
    people = await _correspondents(
        session,
        request,
        located,
        conversation.professional_mailbox_id if conversation is not None else None,
    )
    decision = None
    if located.received:
        me = space_sender_facts(mailbox, state.space)
        decision = await reply_decision(
            session, me, people.reply_target, reply_facts(me, located, references_of(message))
        )
    return PageFacts(
        people.sender,
        people.recipients,
        people.signature,
        conversation is not None and conversation.state is ConversationState.CLOSED,
        people.professional,
        decision,
    )


async def _correspondents(
    session: AsyncSession, request: web.Request, located: Located, professional_id: int | None
) -> Correspondents:
    """Who sent the message, to whom, who signed it and the conversation's professional, as
    the directory describes them: read once, then kept by message (its content never changes)
    for ``CORRESPONDENTS_MAX_AGE`` seconds, so a change in the directory shows within that.

    The reply target's facts are kept with them: the page's reply decision is only advice, the
    gateway decides again on the directory's rows when the reply is sent."""
    message = located.message
    key = (message.id, professional_id, located.received)
    kept = correspondents_of(request)
    found = kept.get(key)
    if found is not None:
        return found
    recipients = _to_addresses(message)
    directory = Directory(session)
    await directory.describe(
        addresses=[message.from_address, *recipients],
        ids=[professional_id] if professional_id is not None else [],
    )
    sender = await directory.by_address(message.from_address)
    found = Correspondents(
        sender,
        [await directory.by_address(a) for a in recipients],
        await signature_line(directory, message, sender) if located.received else None,
        await directory.by_id(professional_id) if professional_id is not None else sender,
        await reply_target(session, located) if located.received else None,
    )
    kept.put(key, found)
    return found


async def _show(
    request: web.Request,
    mailbox: Mailbox,
    located: Located,
    *,
    notice: str = "",
    error: str = "",
    draft: str = "",
    status: int = 200,
) -> web.Response:
    async with db_of(request).read() as session:
        facts = await _page_facts(session, request, mailbox, located)
    return await _render(
        request, located, facts, notice=notice, error=error, draft=draft, status=status
    )


async def _render(
    request: web.Request,
    located: Located,
    facts: PageFacts,
    *,
    notice: str = "",
    error: str = "",
    draft: str = "",
    status: int = 200,
) -> web.Response:
    message = located.message
    shown = shown_message(message.id, message.internal_date, message.raw, message.bodystructure)
    withheld = await _withheld(
        request,
        located.folder.mailbox_id,
        message,
        shown.raw,
        shown.structure,
        shown.content.attachments,
    )
    content = dataclasses.replace(
        shown.content,
        attachments=[a for a in shown.content.attachments if a.part not in withheld.parts],
    )
    decision = facts.decision
    context: dict[str, Any] = {
        "title": message.subject or "Message sans objet",
        "located": located,
        "message": message,
        "sender": facts.sender,
        "recipients": facts.recipients,
        "signature": facts.signature,
        "content": content,
        "when": local_time(message.internal_date),
        "closed": facts.closed,
        "professional": facts.professional,
        "can_reply": decision is not None and decision.allowed and not facts.closed,
        "no_reply_reason": decision.sentence_fr
        if decision is not None and not decision.allowed
        else "",
        "notice": notice,
        "error": error,
        "draft": draft,
        "reply_subject": reply_subject(message.subject),
        "withheld": withheld.sentence_fr,
    }
    return await render(request, "messages_lecture.html", context, status=status)


async def _withheld(
    request: web.Request,
    mailbox_id: int,
    message: StoredMessage,
    raw: bytes,
    structure: dict[str, Any],
    attachments: list[Attachment],
) -> WithheldAttachments:
    """The attachments carrying a document hidden from the viewer (the patient or a guardian)."""
    state = visit(request)
    assert state.space is not None
    return await withheld_attachments(
        db_of(request),
        viewer_of(request).kind,
        patient_id=state.space.id,
        mailbox_id=mailbox_id,
        message=message,
        raw=raw,
        structure=structure,
        attachments=attachments,
    )


def _to_addresses(message: Any) -> list[str]:
    envelope = message.envelope or []
    found = envelope[5] if len(envelope) > 5 and envelope[5] else []
    return [
        f"{a[2]}@{a[3]}".lower()
        for a in found
        if isinstance(a, list) and len(a) == 4 and a[2] and a[3]
    ]


@signed_in
async def attachment(request: web.Request) -> web.StreamResponse:
    """One attachment as a download: its declared type, RFC 6266 file name, never sniffed."""
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        mailbox, located = await _located(session, request)
    if mailbox is None or located is None:
        return await not_found(request)
    part = request.match_info["part"]
    message = located.message
    shown = shown_message(message.id, message.internal_date, message.raw, message.bodystructure)
    raw, structure, attachments = shown.raw, shown.structure, shown.content.attachments
    listed = next((a for a in attachments if a.part == part), None)
    node = find_part(structure, part) if listed is not None else None
    if (
        listed is not None
        and part
        in (await _withheld(request, mailbox.id, message, raw, structure, attachments)).parts
    ):
        listed = None  # answered exactly like a part that does not exist
    if listed is None or node is None:
        return await not_found(request, "Cette pièce jointe")
    await audit_committed(
        db_of(request),
        "message_attachment_read",
        actor(request),
        state.space,
        target=message.from_address,
        filename=listed.filename,
        stored_message_id=message.id,
    )
    return web.Response(
        body=decode_part(raw, node),
        headers={
            "Content-Type": listed.content_type,
            "Content-Disposition": content_disposition(listed.filename),
            "X-Content-Type-Options": "nosniff",
        },
    )


@signed_in
async def reply(request: web.Request) -> web.StreamResponse:
    """Send a reply through the gateway, which applies the professional-initiates rule itself."""
    state = visit(request)
    assert state.space is not None
    text = str((await request.post()).get("texte", "")).strip()
    async with db_of(request).read() as session:
        mailbox, located = await _located(session, request)
        if mailbox is None or located is None:
            return await not_found(request)
        me = space_sender_facts(mailbox, state.space)
        target = await reply_target(session, located)
    if not text:
        return await _show(request, mailbox, located, error=EMPTY_REPLY, status=400)
    original = located.message
    to = target.address if target is not None else original.from_address
    message_id = message_id_for(request)
    raw = build_message(
        author_of(request, mailbox),
        to,
        reply_subject(original.subject),
        text,
        message_id,
        now=now_of(request),
        in_reply_to=original.message_id_header,
        references=references_of(original),
    )
    outcome = await submit(request, me, to, raw)
    async with db_of(request).write() as session:
        if outcome.decision.allowed:
            audit(
                session,
                "message_sent",
                actor(request),
                state.space,
                target=to,
                message_id=message_id,
                in_reply_to=original.message_id_header,
            )
        else:
            audit(
                session,
                "message_refused",
                actor(request),
                state.space,
                target=to,
                reason=outcome.decision.sentence_fr,
            )
    if not outcome.decision.allowed:
        return await refused(request, outcome, "Réponse refusée")
    if original.conversation_id is not None:
        return redirect(f"/messages/conversation/{original.conversation_id}?fait=envoye")
    return redirect(f"/messages/{located.entry.id}?fait=envoye")


async def refused(request: web.Request, outcome: Accepted, title: str) -> web.Response:
    """The gateway's refusal, in the policy's own French sentence (503 when trying later may
    work)."""
    status = 503 if outcome.decision.smtp_code < 500 else 403
    return await render(
        request,
        "refus.html",
        {"title": title, "sentence": outcome.decision.sentence_fr},
        status=status,
    )
