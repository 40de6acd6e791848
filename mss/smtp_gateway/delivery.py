"""Durable delivery: one transaction, then (and only then) the 250.

The transaction writes the message, one INBOX entry per local recipient,
the Sent copy of a submission, the conversation state, the audit events
and the follow-up jobs (relay to other operators, DSN for recipients that
became unreachable since RCPT). A database failure or timeout is a 451.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.intake import carries_xdm, enqueue_filing
from mss.agenda.convocations import follow_up_delivery
from mss.audit import record
from mss.config import Settings
from mss.conversations import close_conversation, conversation_facts, open_conversation
from mss.db import Database
from mss.jobs import enqueue
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import INBOX, append, store_message
from mss.policy import (
    ConversationAction,
    Decision,
    MailboxFacts,
    decide_conversation,
    decide_mailbox_reachable,
    domain_of,
)
from mss.smtp_gateway.content import ParsedMessage, SignatureOutcome
from mss.smtp_gateway.deadline import within
from mss.smtp_gateway.envelope import Transaction
from mss.smtp_gateway.lookup import mailbox_facts

RELAY_JOB = "smtp.relay"
DSN_JOB = "smtp.dsn"
RELAY_ATTEMPTS = 8


class DeliveryRefused(Exception):
    """A decision taken inside the delivery transaction refused the message (rolled back)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.sentence)
        self.decision = decision


@dataclass
class DeliveryReceipt:
    """What one delivery committed."""

    message_ids: list[int] = field(default_factory=list)
    delivered_to: list[str] = field(default_factory=list)
    relayed_to: list[str] = field(default_factory=list)
    bounced: list[str] = field(default_factory=list)
    jobs: int = 0

    @property
    def queue_id(self) -> str:
        return f"M{self.message_ids[0]}" if self.message_ids else "none"


async def deliver(db: Database, settings: Settings, txn: Transaction, parsed: ParsedMessage,
                  signature: SignatureOutcome) -> DeliveryReceipt:
    """Commit the message for every recipient, or nothing (raises DeliveryRefused, DatabaseUnavailable)."""
    async def transaction() -> DeliveryReceipt:
        for attempt in range(3):
            try:
                async with db.write() as session:
                    return await _deliver(session, settings, txn, parsed, signature)
            except IntegrityError:
                # Two first deliveries to one mailbox may race to create its folders; the
                # whole transaction rolled back, so running it again is safe.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return await within(settings.limits.database_timeout, transaction())


async def _deliver(session: AsyncSession, settings: Settings, txn: Transaction, parsed: ParsedMessage,
                   signature: SignatureOutcome) -> DeliveryReceipt:
    receipt = DeliveryReceipt()
    sender = txn.sender
    groups: dict[int | None, list[MailboxFacts]] = defaultdict(list)
    failures: list[dict[str, object]] = []
    for recipient in txn.recipients:
        if not recipient.local:
            continue
        current = await mailbox_facts(session, recipient.address)
        reachable = decide_mailbox_reachable(current) if current else None
        if current is None or reachable is None or not reachable.allowed:
            failures.append(_failure(recipient.address, reachable))
            continue
        groups[await _conversation_for(session, txn, current, parsed)].append(current)

    stored: StoredMessage | None = None
    store_signature = signature.as_store_dict()
    for conversation_id, mailboxes in groups.items():
        message = await store_message(session, parsed.raw, signature=store_signature,
                                      conversation_id=conversation_id)
        stored = stored or message
        receipt.message_ids.append(message.id)
        for mailbox in mailboxes:
            await append(session, mailbox.id, INBOX, message)
            receipt.delivered_to.append(mailbox.address)
            record(session, "message.received", actor_kind=sender.actor_kind,
                   actor=sender.mail_from or "<>", patient_id=await _patient_id(session, mailbox),
                   target=mailbox.address, source=sender.channel, message_id=parsed.message_id,
                   stored_message_id=message.id, conversation_id=conversation_id,
                   signature=signature.status)
            if mailbox.is_patient and carries_xdm(parsed.raw):  # DMP filing (dmp_bridge)
                enqueue_filing(session, stored_message_id=message.id, mailbox_id=mailbox.id,
                               mail_from=sender.mail_from)
                receipt.jobs += 1
            receipt.jobs += follow_up_delivery(session, parsed.raw, mailbox.id, mailbox.is_patient,
                                               message.id)  # convocations: the agenda (mss.agenda)

    remote = [r.address for r in txn.recipients if not r.local]
    needs_copy = sender.mailbox is not None and sender.channel in ("submission", "portal")
    if stored is None and (remote or needs_copy or failures):
        stored = await store_message(session, parsed.raw, signature=store_signature)
        receipt.message_ids.append(stored.id)
    if needs_copy and sender.mailbox is not None and stored is not None:
        await append(session, sender.mailbox.id, "Sent", stored, flags=("\\Seen",))
    if sender.mailbox is not None and stored is not None:
        record(session, "message.sent", actor_kind=sender.actor_kind, actor=sender.mail_from,
               patient_id=await _patient_id(session, sender.mailbox), source=sender.channel,
               target=", ".join(r.address for r in txn.recipients), message_id=parsed.message_id,
               stored_message_id=stored.id, signature=signature.status)

    by_domain: dict[str, list[str]] = defaultdict(list)
    for address in remote:
        by_domain[domain_of(address)].append(address)
    for domain, addresses in sorted(by_domain.items()):
        assert stored is not None
        enqueue(session, RELAY_JOB, {"message_id": stored.id, "mail_from": sender.mail_from,
                                     "recipients": addresses, "domain": domain,
                                     "max_attempts": RELAY_ATTEMPTS}, max_attempts=RELAY_ATTEMPTS)
        receipt.relayed_to += addresses
        receipt.jobs += 1
    if failures and stored is not None:
        enqueue(session, DSN_JOB, {"message_id": stored.id, "mail_from": sender.mail_from,
                                   "failures": failures})
        receipt.bounced = [str(f["recipient"]) for f in failures]
        receipt.jobs += 1
    return receipt


async def _conversation_for(session: AsyncSession, txn: Transaction, recipient: MailboxFacts,
                            parsed: ParsedMessage) -> int | None:
    """Apply the professional-initiates rule inside the transaction; the conversation to file under."""
    sender = txn.sender.mailbox
    if sender is None or not (sender.is_patient or recipient.is_patient):
        return None
    patient, professional = (sender, recipient) if sender.is_patient else (recipient, sender)
    conversations = await conversation_facts(session, patient.id, professional.id,
                                             parsed.facts.referenced_ids)
    outcome = decide_conversation(sender, recipient, parsed.facts, conversations)
    if not outcome.decision.allowed:
        raise DeliveryRefused(outcome.decision)
    if outcome.action is ConversationAction.OPEN:
        return (await open_conversation(session, patient.id, professional.id)).id
    if outcome.action is ConversationAction.CLOSE and outcome.conversation_id is not None:
        await close_conversation(session, outcome.conversation_id)
        record(session, "conversation.closed", actor_kind=txn.sender.actor_kind, actor=sender.address,
               patient_id=await _patient_id(session, patient), target=recipient.address,
               conversation_id=outcome.conversation_id)
    return outcome.conversation_id


async def _patient_id(session: AsyncSession, mailbox: MailboxFacts) -> int | None:
    if not mailbox.is_patient:
        return None
    from mss.directory.models import Mailbox

    row = await session.get(Mailbox, mailbox.id)
    return row.patient_id if row is not None else None


def _failure(address: str, decision: Decision | None) -> dict[str, object]:
    if decision is None:
        return {"recipient": address, "code": 550, "status": "5.1.1",
                "sentence": f"No such mailbox: <{address}>", "sentence_fr": f"Boîte inconnue : <{address}>"}
    return {"recipient": address, "code": decision.smtp_code, "status": decision.enhanced_status,
            "sentence": decision.sentence, "sentence_fr": decision.sentence_fr}
