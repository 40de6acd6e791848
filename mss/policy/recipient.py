"""Each RCPT: does the recipient exist, can it receive, may this sender write to it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mss.policy.conversation import PATIENT_TO_PATIENT, conversation_closed
from mss.policy.decision import OK, Decision, refuse
from mss.policy.facts import ConversationFacts, MailboxFacts, RecipientFacts, domain_of
from mss.policy.patient_documents import decide_one_off_recipient
from mss.policy.vocabulary import MailboxKind, MailboxState, PatientState


def decide_recipient(
    sender: MailboxFacts | None,
    recipient: RecipientFacts,
    conversations: Sequence[ConversationFacts] = (),
    one_off: str = "",
) -> Decision:
    """May ``sender`` (None: a user of another operator, via the relay port) write to ``recipient``?

    ``conversations`` are the conversations between a patient sender and the
    recipient; they decide the professional-initiates rule at RCPT time (the
    References are checked once the message is read). ``one_off``: the kind of one-off
    document the portal sends for a patient (``mss.policy.patient_documents``).
    """
    if not recipient.local:
        return _decide_remote(sender, recipient)
    mailbox = recipient.mailbox
    if mailbox is None:
        return refuse(
            550,
            "5.1.1",
            f"No such mailbox: <{recipient.address}>",
            f"Boîte inconnue : <{recipient.address}>",
        )
    reachable = decide_mailbox_reachable(mailbox)
    if not reachable:
        return reachable
    if mailbox.is_patient and sender is None:
        return refuse(
            550,
            "5.7.1",
            f"<{recipient.address}> is a patient mailbox that receives only from "
            "professionals of this hub",
            f"<{recipient.address}> est une boîte patient qui ne "
            "reçoit que des professionnels de ce hub",
        )
    if sender is not None and sender.is_patient:
        return decide_patient_recipient(sender, mailbox, conversations, one_off)
    return OK


def decide_mailbox_reachable(mailbox: MailboxFacts) -> Decision:
    """Is a local mailbox open to new messages (mailbox state, then patient account state)?"""
    address = mailbox.address
    if mailbox.state is MailboxState.CLOSED:
        return refuse(
            550, "5.2.1", f"Mailbox <{address}> is closed", f"La boîte <{address}> est fermée"
        )
    if mailbox.state is MailboxState.SUSPENDED:
        return refuse(
            550, "5.2.1", f"Mailbox <{address}> is suspended", f"La boîte <{address}> est suspendue"
        )
    if mailbox.kind is not MailboxKind.PAT:
        return OK
    return decide_patient_account(mailbox.patient_state, address, mailbox.opposition_deadline)


def decide_patient_account(
    state: PatientState | None, address: str, deadline: dt.datetime | None = None
) -> Decision:
    """A patient account receives messages only once it is active; each other state says why not."""
    if state is PatientState.ACTIVE:
        return OK
    if state in (PatientState.CREATED, PatientState.OPPOSITION_WINDOW, None):
        until = f" until {deadline:%Y-%m-%d}" if deadline else ""
        until_fr = f" jusqu'au {deadline:%d/%m/%Y}" if deadline else ""
        return refuse(
            550,
            "5.2.1",
            f"The patient account <{address}> is not open yet: the patient may "
            f"still oppose its creation{until}",
            f"Le compte patient <{address}> n'est pas encore ouvert : le patient peut "
            f"encore s'opposer à sa création{until_fr}",
        )
    if state is PatientState.OPPOSED:
        return refuse(
            550,
            "5.7.1",
            f"The patient <{address}> opposed the creation of their account",
            f"Le patient <{address}> s'est opposé à la création de son compte",
        )
    if state is PatientState.DEACTIVATED:
        return refuse(
            550,
            "5.2.1",
            f"The patient account <{address}> is deactivated",
            f"Le compte patient <{address}> est désactivé",
        )
    return refuse(
        550,
        "5.2.1",
        f"The patient account <{address}> is closed",
        f"Le compte patient <{address}> est clôturé",
    )


def decide_patient_recipient(
    sender: MailboxFacts,
    recipient: MailboxFacts,
    conversations: Sequence[ConversationFacts],
    one_off: str = "",
) -> Decision:
    """A patient writes only inside an open conversation, or to a pharmacy (the one exception);
    a one-off document the portal builds (the profile summary) follows its own rule."""
    if recipient.is_patient:
        return PATIENT_TO_PATIENT
    if one_off:
        return decide_one_off_recipient(recipient, one_off)
    if recipient.kind is MailboxKind.ORG and recipient.pharmacy:
        return OK
    mine = [
        c
        for c in conversations
        if c.patient_mailbox_id == sender.id and c.professional_mailbox_id == recipient.id
    ]
    if any(c.is_open for c in mine):
        return OK
    if mine:
        return conversation_closed(recipient.address)
    return refuse(
        550,
        "5.7.1",
        f"A patient cannot start a conversation with <{recipient.address}>: "
        "only the professional can",
        f"Un patient ne peut pas ouvrir de conversation avec "
        f"<{recipient.address}> : seul le professionnel le peut",
    )


def _decide_remote(sender: MailboxFacts | None, recipient: RecipientFacts) -> Decision:
    domain = domain_of(recipient.address)
    if sender is None:
        return refuse(
            550,
            "5.7.1",
            f"Relaying denied: {domain} is not a domain of this hub",
            f"Relais refusé : {domain} n'est pas un domaine de ce hub",
        )
    if sender.is_patient:
        return refuse(
            550,
            "5.7.1",
            "A patient can write only to professionals of this hub",
            "Un patient ne peut écrire qu'aux professionnels de ce hub",
        )
    if not recipient.domain_trusted:
        return refuse(
            550,
            "5.7.1",
            f"<{recipient.address}> is outside the trust space: {domain} is not "
            "on the MSSante trust list",
            f"<{recipient.address}> est hors de l'espace de "
            f"confiance : {domain} n'est pas sur la liste blanche MSSanté",
        )
    return OK


def decide_recipient_count(count_so_far: int, limit: int) -> Decision:
    """One more RCPT would exceed the per-message limit."""
    if count_so_far >= limit:
        return refuse(
            452,
            "4.5.3",
            f"Too many recipients: at most {limit} per message",
            f"Trop de destinataires : au plus {limit} par message",
        )
    return OK
