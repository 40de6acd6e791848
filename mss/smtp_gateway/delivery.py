"""Durable delivery: one transaction, then (and only then) the 250.

The transaction writes the message, one INBOX entry per local recipient,
the Sent copy of a submission, the conversation state, the audit events
and the follow-up jobs: its own (relay to other operators, DSN for recipients
that became unreachable since RCPT) and those other packages registered
(``mss.followups``: DMP filing, agenda, notifications...), which delivery
enqueues without knowing them. A database failure or timeout is a 451.

Deliveries ready at the same moment share that transaction (group commit,
``mss.group_commit``): each is planned in turn (directory facts read once
for the batch, the conversation rule applied in order), then the batch is
written with a handful of multi-row statements whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record, recording_in_bulk
from mss.config import Settings
from mss.conversations import close_conversation, conversation_facts, open_conversation
from mss.db import Database
from mss.delivery_status import insert_statuses, status_row
from mss.directory.batch_facts import DirectorySnapshot
from mss.followups import Delivery, FollowUp, registry
from mss.group_commit import group_commit
from mss.jobs import enqueue, enqueuing_in_bulk
from mss.mailbox.store import INBOX, Append, append_many, insert_messages, message_values
from mss.mailbox.structure import MAX_DEPTH, MessageStructure
from mss.message import Message
from mss.policy import (
    ConversationAction,
    Decision,
    MailboxFacts,
    decide_conversation,
    decide_mailbox_reachable,
    decide_mime_depth,
    domain_of,
)
from mss.smtp_gateway.batch_facts import ConversationSnapshot
from mss.smtp_gateway.content import SignatureOutcome
from mss.smtp_gateway.envelope import Transaction

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


@dataclass(frozen=True)
class DeliveryRequest:
    """One message ready to be committed: what the session stage established, verified and computed.

    ``structure`` (the IMAP facts of the stamped raw bytes) and ``follow_ups`` (which
    registered follow-ups want the message) are computed by the session, off the shared
    writer: the MIME tree of ``parsed`` is walked once, there.
    """

    settings: Settings
    txn: Transaction
    parsed: Message
    signature: SignatureOutcome
    structure: MessageStructure
    follow_ups: tuple[FollowUp, ...]  # those that want the message (``mss.followups``)


def prepare(
    settings: Settings, txn: Transaction, parsed: Message, signature: SignatureOutcome
) -> DeliveryRequest:
    """The CPU work of a delivery, done by the session before it joins a group commit.

    Raises DeliveryRefused for MIME nested deeper than the store opens (its tree stops
    there, so an attachment below would be missed and the IMAP structure incomplete).
    """
    structure = parsed.structure
    depth = decide_mime_depth(structure.too_deep, max_depth=MAX_DEPTH)
    if not depth.allowed:
        raise DeliveryRefused(depth)
    return DeliveryRequest(settings, txn, parsed, signature, structure, registry.wanted(parsed))


async def deliver(db: Database, request: DeliveryRequest) -> DeliveryReceipt:
    """Commit the message for every recipient, or nothing (raises DeliveryRefused,
    DatabaseUnavailable).

    Deliveries ready at the same moment share one transaction (``mss.group_commit``);
    the receipt is returned only after that transaction committed.
    """
    writer = group_commit(db, "smtp.delivery", write_deliveries)
    return await writer.submit(request, request.settings.limits.database_timeout)


@dataclass
class _Plan:
    """One request's decisions, waiting for the batch's writes."""

    request: DeliveryRequest
    receipt: DeliveryReceipt
    groups: dict[int | None, list[MailboxFacts]]
    failures: list[dict[str, object]]
    closed: list[tuple[int, MailboxFacts, MailboxFacts]]  # (conversation, patient, recipient)
    extra_copy: bool = False


class _Batch:
    """Deliveries of one transaction: planned one by one, written together."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.directory = DirectorySnapshot()
        self.conversations = ConversationSnapshot()
        self.pending: list[_Plan] = []
        self.statuses: list[dict[str, object]] = []  # ``mss.delivery_status`` rows
        self.pending_message_ids: set[str] = set()

    async def load(self, requests: Sequence[DeliveryRequest]) -> None:
        """Read the directory facts of every recipient and sender of the batch, then the
        conversations
        of every patient/professional pair a new message (one citing none) may open or continue."""
        await self.directory.load(
            self.session,
            [r.address for q in requests for r in q.txn.recipients if r.local],
            [q.txn.sender.mailbox.id for q in requests if q.txn.sender.mailbox is not None],
        )
        pairs = []
        for request in requests:
            sender = request.txn.sender.mailbox
            if sender is None or request.parsed.facts.referenced_ids:
                continue
            for recipient in request.txn.recipients:
                facts = self.directory.loaded(recipient.address) if recipient.local else None
                if facts is not None and (sender.is_patient or facts.is_patient):
                    pairs.append(
                        (sender.id, facts.id) if sender.is_patient else (facts.id, sender.id)
                    )
        await self.conversations.load(self.session, pairs)

    async def plan(self, request: DeliveryRequest) -> DeliveryReceipt:
        """Decide what ``request`` writes (policy, conversations); written at the next ``write``."""
        if self.pending_message_ids & set(request.parsed.facts.referenced_ids):
            await self.write()  # a reply citing a message of this batch must find it stored
        txn, receipt = request.txn, DeliveryReceipt()
        plan = _Plan(request, receipt, defaultdict(list), [], [])
        for recipient in txn.recipients:
            if not recipient.local:
                continue
            current = await self.directory.facts(self.session, recipient.address)
            reachable = decide_mailbox_reachable(current) if current else None
            if current is None or reachable is None or not reachable.allowed:
                plan.failures.append(_failure(recipient.address, reachable))
                continue
            plan.groups[await self._conversation_for(plan, current)].append(current)
        sender = txn.sender
        remote = any(not r.local for r in txn.recipients)
        needs_copy = sender.mailbox is not None and sender.channel in ("submission", "portal")
        plan.extra_copy = not plan.groups and (remote or needs_copy or bool(plan.failures))
        self.pending.append(plan)
        if request.parsed.message_id:
            self.pending_message_ids.add(request.parsed.message_id)
        return receipt

    async def _conversation_for(self, plan: _Plan, recipient: MailboxFacts) -> int | None:
        """Apply the professional-initiates rule inside the transaction; the conversation to file
        under."""
        txn, facts = plan.request.txn, plan.request.parsed.facts
        sender = txn.sender.mailbox
        if sender is None or not (sender.is_patient or recipient.is_patient):
            return None
        patient, professional = (sender, recipient) if sender.is_patient else (recipient, sender)
        conversations = None
        if not facts.referenced_ids:
            await self.conversations.load(self.session, [(patient.id, professional.id)])
            conversations = self.conversations.of(patient.id, professional.id)
        if conversations is None:
            conversations = await conversation_facts(
                self.session, patient.id, professional.id, facts.referenced_ids
            )
        outcome = decide_conversation(sender, recipient, facts, conversations, txn.document)
        if not outcome.decision.allowed:
            raise DeliveryRefused(outcome.decision)
        if outcome.action is ConversationAction.OPEN:
            opened = (await open_conversation(self.session, patient.id, professional.id)).id
            self.conversations.opened(opened, patient.id, professional.id)
            return opened
        if outcome.action is ConversationAction.CLOSE and outcome.conversation_id is not None:
            await close_conversation(self.session, outcome.conversation_id)
            self.conversations.closed(outcome.conversation_id)
            plan.closed.append((outcome.conversation_id, patient, recipient))
        return outcome.conversation_id

    async def write(self) -> None:
        """Write every pending plan: messages, folder entries, audit events, jobs."""
        plans, self.pending, self.pending_message_ids = self.pending, [], set()
        rows: list[dict[str, object]] = []
        for plan in plans:
            request = plan.request
            store_signature = request.signature.as_store_dict()
            for conversation_id in plan.groups:
                rows.append(
                    message_values(
                        request.parsed.raw,
                        request.structure,
                        signature=store_signature,
                        conversation_id=conversation_id,
                    )
                )
            if plan.extra_copy:
                rows.append(
                    message_values(request.parsed.raw, request.structure, signature=store_signature)
                )
        ids = iter(await insert_messages(self.session, rows))
        appends: list[Append] = []
        async with recording_in_bulk(self.session), enqueuing_in_bulk(self.session):
            for plan in plans:
                plan.receipt.message_ids = [
                    next(ids) for _ in range(len(plan.groups) + plan.extra_copy)
                ]
                appends += self._finish(plan)
        await append_many(self.session, appends)
        statuses, self.statuses = self.statuses, []
        await insert_statuses(self.session, statuses)

    def _finish(self, plan: _Plan) -> list[Append]:
        """Audit events and jobs of one plan (added to the session); its folder appends."""
        session, request, receipt = self.session, plan.request, plan.receipt
        sender, parsed, signature = request.txn.sender, request.parsed, request.signature
        appends: list[Append] = []
        for closed_id, patient, recipient in plan.closed:
            assert sender.mailbox is not None
            record(
                session,
                "conversation.closed",
                actor_kind=sender.actor_kind,
                actor=sender.mailbox.address,
                patient_id=self.directory.patient_id(patient),
                target=recipient.address,
                conversation_id=closed_id,
            )
        for message_id, (conversation_id, mailboxes) in zip(
            receipt.message_ids, plan.groups.items(), strict=False
        ):
            for mailbox in mailboxes:
                appends.append(Append(mailbox.id, INBOX, message_id))
                receipt.delivered_to.append(mailbox.address)
                if sender.mailbox is not None and parsed.message_id:
                    self.statuses.append(
                        status_row(
                            parsed.message_id, sender.mailbox.address, mailbox.address, "delivered"
                        )
                    )
                record(
                    session,
                    "message.received",
                    actor_kind=sender.actor_kind,
                    actor=sender.mail_from or "<>",
                    patient_id=self.directory.patient_id(mailbox),
                    target=mailbox.address,
                    source=sender.channel,
                    message_id=parsed.message_id,
                    stored_message_id=message_id,
                    conversation_id=conversation_id,
                    signature=signature.status,
                )
                delivery = Delivery(
                    parsed,
                    message_id,
                    mailbox,
                    self.directory.patient(mailbox),
                    sender.mail_from,
                    request.txn.original_recipients.get(mailbox.id),
                )
                for job in registry.jobs_for(request.follow_ups, delivery):
                    enqueue(
                        session,
                        job.kind,
                        job.payload,
                        dedupe_key=job.dedupe_key,
                        max_attempts=job.max_attempts,
                    )
                    receipt.jobs += 1
        stored = receipt.message_ids[0] if receipt.message_ids else None
        needs_copy = sender.mailbox is not None and sender.channel in ("submission", "portal")
        if needs_copy and sender.mailbox is not None and stored is not None:
            appends.append(Append(sender.mailbox.id, "Sent", stored, ("\\Seen",)))
        if sender.mailbox is not None and stored is not None:
            record(
                session,
                "message.sent",
                actor_kind=sender.actor_kind,
                actor=sender.mail_from,
                patient_id=self.directory.patient_id(sender.mailbox),
                source=sender.channel,
                target=", ".join(r.address for r in request.txn.recipients),
                message_id=parsed.message_id,
                stored_message_id=stored,
                signature=signature.status,
            )
        self._follow_up_jobs(plan, stored)
        return appends

    def _follow_up_jobs(self, plan: _Plan, stored: int | None) -> None:
        """Relay to other operators (one job per domain) and the DSN of unreachable recipients."""
        sender, receipt = plan.request.txn.sender, plan.receipt
        by_domain: dict[str, list[str]] = defaultdict(list)
        for recipient in plan.request.txn.recipients:
            if not recipient.local:
                by_domain[domain_of(recipient.address)].append(recipient.address)
        for domain, addresses in sorted(by_domain.items()):
            assert stored is not None
            enqueue(
                self.session,
                RELAY_JOB,
                {
                    "message_id": stored,
                    "mail_from": sender.mail_from,
                    "recipients": addresses,
                    "domain": domain,
                    "max_attempts": RELAY_ATTEMPTS,
                },
                max_attempts=RELAY_ATTEMPTS,
            )
            receipt.relayed_to += addresses
            receipt.jobs += 1
        if plan.failures and stored is not None:
            enqueue(
                self.session,
                DSN_JOB,
                {"message_id": stored, "mail_from": sender.mail_from, "failures": plan.failures},
            )
            receipt.bounced = [str(f["recipient"]) for f in plan.failures]
            receipt.jobs += 1


async def write_deliveries(
    session: AsyncSession, requests: Sequence[DeliveryRequest]
) -> list[DeliveryReceipt]:
    """Every delivery of a batch, in order, inside the caller's one transaction.

    The result is what running them one after the other would give: each request's
    policy decisions see the conversations the earlier ones opened or closed, and a
    reply citing an earlier message of the batch finds it stored.
    """
    batch = _Batch(session)
    await batch.load(requests)
    receipts = [await batch.plan(request) for request in requests]
    await batch.write()
    return receipts


def _failure(address: str, decision: Decision | None) -> dict[str, object]:
    if decision is None:
        return {
            "recipient": address,
            "code": 550,
            "status": "5.1.1",
            "sentence": f"No such mailbox: <{address}>",
            "sentence_fr": f"Boîte inconnue : <{address}>",
        }
    return {
        "recipient": address,
        "code": decision.smtp_code,
        "status": decision.enhanced_status,
        "sentence": decision.sentence,
        "sentence_fr": decision.sentence_fr,
    }
