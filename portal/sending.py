"""The portal's way out: the gateway's portal path, and the rule checks that decide what to offer.

Every message the portal sends (reply, new message to a pharmacy, read
receipt) goes through ``Gateway.submit``: the same ``mss.policy`` decisions
and the same delivery as SMTP. Before showing a reply form, the page asks
the same policy functions with the reply it would send.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.conversations import conversation_facts, find_conversation
from mss.crypto.space_signing import SpaceSigners
from mss.directory.facts import facts_of, mailbox_facts, mailbox_facts_by_id
from mss.directory.models import Mailbox, Patient
from mss.policy import (
    Decision,
    MailboxFacts,
    MessageFacts,
    RecipientFacts,
    decide_conversation,
    decide_recipient,
    refuse,
)
from mss.smtp_gateway import Accepted, Gateway, new_message_id
from mss.web import SERVICES
from portal.compose import reply_subject
from portal.context import db_of, settings_of
from portal.messages import Located

UNKNOWN_CORRESPONDENT = refuse(
    550,
    "5.1.1",
    "The sender of this message has no mailbox on this hub",
    "L'expéditeur de ce message n'a pas de boîte sur cette messagerie : "
    "il n'est pas possible de lui répondre d'ici.",
)


def gateway_of(request: web.Request) -> Gateway:
    """The hub's gateway stages, shared by every request of the application."""
    services = request.app[SERVICES]
    found = services.built.portal_gateway
    if not isinstance(found, Gateway):
        found = services.built.portal_gateway = Gateway(
            settings_of(request), db_of(request), services
        )
    return found


def space_signers_of(request: web.Request) -> SpaceSigners:
    """The hub's signing identities for patient mailboxes, shared by the application."""
    built = request.app[SERVICES].built
    if not isinstance(built.space_signers, SpaceSigners):
        built.space_signers = SpaceSigners(settings_of(request).pki_dir)
    return built.space_signers


def message_id_for(request: web.Request) -> str:
    return new_message_id(settings_of(request).domain)


async def sender_facts(session: AsyncSession, mailbox: Mailbox) -> MailboxFacts:
    found = await mailbox_facts_by_id(session, mailbox.id)
    assert found is not None
    return found


def space_sender_facts(mailbox: Mailbox, space: Patient) -> MailboxFacts:
    """The space's own mailbox as the gateway sees it, from the rows the request already holds."""
    assert mailbox.patient_id == space.id
    return facts_of(mailbox, space)


async def reply_target(session: AsyncSession, located: Located) -> MailboxFacts | None:
    """Who a reply goes to: the conversation's professional side, else the sender's mailbox."""
    conversation_id = located.message.conversation_id
    if conversation_id is not None:
        conversation = await find_conversation(session, conversation_id)
        if conversation is not None:
            return await mailbox_facts_by_id(session, conversation.professional_mailbox_id)
    return (
        await mailbox_facts(session, located.message.from_address)
        if located.message.from_address
        else None
    )


def reply_facts(
    sender: MailboxFacts, located: Located, references: tuple[str, ...]
) -> MessageFacts:
    """The facts of the reply the portal would send to this message."""
    own = located.message.message_id_header
    return MessageFacts(
        from_addresses=(sender.address,),
        subject=reply_subject(located.message.subject),
        in_reply_to=(own,) if own else (),
        references=references,
    )


async def reply_decision(
    session: AsyncSession, sender: MailboxFacts, target: MailboxFacts | None, facts: MessageFacts
) -> Decision:
    """Would the gateway accept this reply? The same RCPT and conversation decisions, asked
    first."""
    if target is None:
        return UNKNOWN_CORRESPONDENT
    conversations = await conversation_facts(session, sender.id, target.id, facts.referenced_ids)
    recipient = decide_recipient(
        sender, RecipientFacts(target.address, True, target), conversations
    )
    if not recipient.allowed:
        return recipient
    return decide_conversation(sender, target, facts, conversations).decision


async def submit(
    request: web.Request, sender: MailboxFacts, to: str, raw: bytes, *, one_off: str = ""
) -> Accepted:
    """Send through the gateway's portal path (never inside a database transaction).

    ``one_off``: the kind of one-off document the portal built (``mss.policy.patient_documents``).
    """
    return await gateway_of(request).submit(sender, [to], raw, channel="portal", one_off=one_off)
