"""The professional-initiates rule, once the message's headers are known.

A conversation belongs to one patient mailbox and one professional-side
mailbox; only the professional opens it, and ``[FIN]`` (subject) or
``X-MSS-MES: FIN`` from the professional closes it. A patient only
replies inside an open conversation, to its professional, with
In-Reply-To/References naming one of its messages. Exception: a patient
may open a conversation with a pharmacy's organisational mailbox. A one-off
document the portal builds for the patient (the profile summary,
``mss.policy.patient_documents``) opens no conversation and is judged by its own rule.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mss.policy.decision import OK, Decision, refuse
from mss.policy.facts import ConversationFacts, MailboxFacts, MessageFacts
from mss.policy.patient_documents import PatientDocumentFacts, decide_patient_document
from mss.policy.vocabulary import MailboxKind

_FIN = re.compile(r"\[\s*FIN\s*\]", re.IGNORECASE)


PATIENT_TO_PATIENT = refuse(
    550,
    "5.7.1",
    "A patient cannot write to another patient",
    "Un patient ne peut pas écrire à un autre patient",
)


def conversation_closed(professional_address: str) -> Decision:
    """A patient replying in a conversation its professional closed."""
    return refuse(
        550,
        "5.7.1",
        f"The conversation with <{professional_address}> was closed by the professional; "
        "the patient can no longer reply",
        f"La conversation avec <{professional_address}> a été clôturée par le professionnel ; "
        "le patient ne peut plus y répondre",
    )


class ConversationAction(str, enum.Enum):
    NONE = "none"
    OPEN = "open"
    CONTINUE = "continue"
    CLOSE = "close"


@dataclass(frozen=True)
class ConversationOutcome:
    """The decision for one (sender, recipient) pair and what it does to their conversation."""

    decision: Decision
    action: ConversationAction = ConversationAction.NONE
    conversation_id: int | None = None


def is_closing(message: MessageFacts) -> bool:
    """``[FIN]`` in the subject or ``X-MSS-MES: FIN`` ends a conversation."""
    return bool(_FIN.search(message.subject)) or message.mss_mes.strip().upper() == "FIN"


def decide_conversation(
    sender: MailboxFacts,
    recipient: MailboxFacts,
    message: MessageFacts,
    conversations: Sequence[ConversationFacts],
    document: PatientDocumentFacts | None = None,
) -> ConversationOutcome:
    """Apply the professional-initiates rule to one sender and one local recipient.

    ``conversations`` are those between the patient and the professional-side
    mailbox of this pair plus any the message refers to (so a reply to another
    professional's conversation is recognised). ``document``: the message is a one-off
    document the portal built for a patient sender.
    """
    if sender.is_patient:
        return decide_patient_message(sender, recipient, message, conversations, document)
    if recipient.is_patient and sender.is_professional_side:
        return decide_professional_message(sender, recipient, message, conversations)
    return ConversationOutcome(OK)


def decide_professional_message(
    sender: MailboxFacts,
    patient: MailboxFacts,
    message: MessageFacts,
    conversations: Sequence[ConversationFacts],
) -> ConversationOutcome:
    """A professional writing to a patient continues their open conversation or opens one."""
    open_ones = [
        c
        for c in conversations
        if c.is_open
        and c.patient_mailbox_id == patient.id
        and c.professional_mailbox_id == sender.id
    ]
    closing = is_closing(message)
    if open_ones:
        current = _best_match(open_ones, message)
        action = ConversationAction.CLOSE if closing else ConversationAction.CONTINUE
        return ConversationOutcome(OK, action, current.id)
    if closing:
        return ConversationOutcome(OK)  # nothing open to close; the patient cannot reply anyway
    return ConversationOutcome(OK, ConversationAction.OPEN)


def decide_patient_message(
    sender: MailboxFacts,
    recipient: MailboxFacts,
    message: MessageFacts,
    conversations: Sequence[ConversationFacts],
    document: PatientDocumentFacts | None = None,
) -> ConversationOutcome:
    """A patient's message: a reply inside an open conversation, the pharmacy exception, or a
    one-off document (which opens nothing)."""
    if recipient.is_patient:
        return ConversationOutcome(PATIENT_TO_PATIENT)
    if document is not None:
        return ConversationOutcome(decide_patient_document(recipient, document))
    referenced = message.referenced_ids
    mine = [c for c in conversations if c.patient_mailbox_id == sender.id]
    replied_to = [c for c in mine if c.message_ids & referenced]
    with_recipient = [c for c in replied_to if c.professional_mailbox_id == recipient.id]
    open_with_recipient = [c for c in with_recipient if c.is_open]
    if open_with_recipient:
        return ConversationOutcome(
            OK, ConversationAction.CONTINUE, _best_match(open_with_recipient, message).id
        )
    if recipient.kind is MailboxKind.ORG and recipient.pharmacy:
        ongoing = [c for c in mine if c.is_open and c.professional_mailbox_id == recipient.id]
        if ongoing:
            return ConversationOutcome(OK, ConversationAction.CONTINUE, ongoing[0].id)
        return ConversationOutcome(OK, ConversationAction.OPEN)
    if with_recipient:
        return ConversationOutcome(conversation_closed(recipient.address))
    if replied_to:
        return ConversationOutcome(
            refuse(
                550,
                "5.7.1",
                f"This reply belongs to a conversation with another professional, not "
                f"<{recipient.address}>",
                f"Cette réponse appartient à une conversation avec un autre "
                f"professionnel que <{recipient.address}>",
            )
        )
    return ConversationOutcome(
        refuse(
            550,
            "5.7.1",
            f"A patient may only reply to a message of an open conversation; "
            f"<{recipient.address}> did not start one",
            f"Un patient ne peut que répondre à un message "
            f"d'une conversation ouverte ; <{recipient.address}> n'en a pas ouvert",
        )
    )


def _best_match(
    candidates: Sequence[ConversationFacts], message: MessageFacts
) -> ConversationFacts:
    """The conversation the message refers to, else the most recent one."""
    for conversation in candidates:
        if conversation.message_ids & message.referenced_ids:
            return conversation
    return max(candidates, key=lambda c: c.id)
