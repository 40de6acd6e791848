"""The messages pages: conversations (newest first, unread counts), the Sent view, one conversation.

``ROUTES`` gathers every messaging route, those of ``message`` (read, download,
reply) and ``compose`` (a new message to a pharmacy) included.
"""

from __future__ import annotations

from aiohttp import web

from mss.delivery_status import RecipientStatus, statuses_of
from mss.directory.store import find_patient_mailbox
from portal.context import db_of, inbox_cache_of, visit
from portal.messages import SENT, Directory, MessageLine, conversation, folder_lines
from portal.pages import render, signed_in
from portal.security import Handler
from portal.views import compose, message
from portal.views.message import not_found

NOTICES = {"envoye": "Votre message a été envoyé."}


@signed_in
async def inbox(request: web.Request) -> web.StreamResponse:
    """Conversations with professionals, newest first, with their unread counts."""
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        found = await inbox_cache_of(request).conversations(
            session, state.space.id, (state.space_mailbox_of, state.space_mailbox)
        )
    items = found or []
    return await render(
        request,
        "messages.html",
        {
            "title": "Messages reçus",
            "items": items,
            "has_mailbox": found is not None,
            "unread": sum(item.unread for item in items),
        },
    )


@signed_in
async def sent(request: web.Request) -> web.StreamResponse:
    """What the space sent from the portal (replies, prescriptions, read receipts), newest first."""
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        mailbox = await find_patient_mailbox(session, state.space.id)
        lines = await folder_lines(session, mailbox.id, SENT) if mailbox is not None else []
        statuses = (
            await statuses_of(session, mailbox.address, (line.message_id_header for line in lines))
            if mailbox is not None
            else {}
        )
        directory = Directory(session)
        recipients = [line.to_addresses[0] if line.to_addresses else "" for line in lines]
        reported = [s.recipient for found in statuses.values() for s in found]
        # one statement for the whole list, the recipients of every status included
        await directory.describe(addresses=[*recipients, *reported])
        rows = [
            (line, await directory.by_address(to), await _described(directory, statuses, line))
            for line, to in zip(lines, recipients, strict=True)
        ]
    return await render(
        request, "messages_envoyes.html", {"title": "Messages envoyés", "rows": rows}
    )


async def _described(
    directory: Directory, statuses: dict[str, list[RecipientStatus]], line: MessageLine
) -> list[tuple[str, str, str]]:
    """Each recipient's delivery status of a sent message: (name, state, French sentence).

    Read receipts the space sent have none (the hub keeps statuses of messages, not of
    reports)."""
    if line.is_receipt:
        return []
    found = statuses.get(line.message_id_header, [])
    return [((await directory.by_address(s.recipient)).name, s.state, s.sentence_fr) for s in found]


@signed_in
async def conversation_page(request: web.Request) -> web.StreamResponse:
    """One conversation of the space, oldest message first; another mailbox's is not found."""
    state = visit(request)
    assert state.space is not None
    wanted = int(request.match_info["conversation"])
    async with db_of(request).read() as session:
        mailbox = await find_patient_mailbox(session, state.space.id)
        found = await conversation(session, mailbox.id, wanted) if mailbox is not None else None
    if found is None:
        return await not_found(request, "Cette conversation")
    latest_received = next(
        (line for line in reversed(found.lines) if line.folder != SENT and not line.is_receipt),
        None,
    )
    return await render(
        request,
        "messages_conversation.html",
        {
            "title": f"Conversation avec {found.counterpart.name}",
            "item": found,
            "latest_received": latest_received,
            "notice": NOTICES.get(request.query.get("fait", ""), ""),
        },
    )


ROUTES: list[tuple[str, str, dict[str, Handler]]] = [
    ("/messages", "messages", {"GET": inbox}),
    ("/messages/envoyes", "messages_sent", {"GET": sent}),
    (
        "/messages/nouveau",
        "message_new",
        {"GET": compose.new_message_form, "POST": compose.send_new_message},
    ),
    (
        "/messages/conversation/{conversation:[0-9]{1,9}}",
        "conversation",
        {"GET": conversation_page},
    ),
    ("/messages/{entry:[0-9]{1,9}}", "message", {"GET": message.read}),
    ("/messages/{entry:[0-9]{1,9}}/repondre", "message_reply", {"POST": message.reply}),
    (
        "/messages/{entry:[0-9]{1,9}}/pieces/{part:[0-9.]{1,40}}",
        "message_attachment",
        {"GET": message.attachment},
    ),
]
