"""Directory and conversation facts for a whole batch of deliveries, read with one statement each.

Inside the delivery transaction the gateway needs, for every local recipient,
its mailbox as it is now (closed since RCPT? patient account state?) and its
patient, and for every patient/professional pair the conversations between
them. Reading them once per batch instead of once per recipient keeps the
number of statements of a group commit nearly constant. The snapshot is taken
inside the transaction, so it is as current as a per-recipient read would be;
changes the batch itself makes (a conversation opened or closed) are applied
to it as they happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.conversations import Conversation, ConversationState
from mss.db import pairs_in, pairs_values
from mss.directory.models import Mailbox
from mss.notify import PatientContact
from mss.policy import MailboxFacts
from mss.policy.facts import ConversationFacts
from mss.smtp_gateway.lookup import FACTS, facts_of_row, facts_row

_conversations = Conversation.__table__.c
_CONVERSATIONS_OF = (
    select(
        _conversations.id,
        _conversations.patient_mailbox_id,
        _conversations.professional_mailbox_id,
        _conversations.state,
    )
    .where(
        pairs_in(_conversations.patient_mailbox_id, _conversations.professional_mailbox_id, "pairs")
    )
    .order_by(_conversations.id)
)
_mailboxes = Mailbox.__table__.c
_FACTS_OF = FACTS.where(
    or_(
        _mailboxes.address.in_(bindparam("addresses", expanding=True)),
        _mailboxes.id.in_(bindparam("ids", expanding=True)),
    )
)


class DirectorySnapshot:
    """Mailbox facts and patient ids of the mailboxes a batch touches."""

    def __init__(self) -> None:
        self._by_address: dict[str, MailboxFacts] = {}
        self._patient_of: dict[int, PatientContact | None] = {}

    async def load(
        self, session: AsyncSession, addresses: Iterable[str], mailbox_ids: Iterable[int]
    ) -> None:
        """Read every named mailbox (with its patient) in one statement."""
        addresses, mailbox_ids = sorted(set(addresses)), sorted(set(mailbox_ids))
        if not addresses and not mailbox_ids:
            return
        rows = await session.execute(_FACTS_OF, {"addresses": addresses, "ids": mailbox_ids})
        for row in rows:
            self._remember(row)

    async def facts(self, session: AsyncSession, address: str) -> MailboxFacts | None:
        """The mailbox at ``address`` (an address stored in another case is looked up alone)."""
        found = self._by_address.get(address)
        if found is not None:
            return found
        row = await facts_row(session, address)
        return self._remember(row) if row is not None else None

    def _remember(self, row: Row[Any]) -> MailboxFacts:
        facts = self._by_address[row.address] = facts_of_row(row)
        self._patient_of[row.id] = (
            PatientContact(row.patient_id, row.email, row.phone)
            if row.patient_id is not None
            else None
        )
        return facts

    def loaded(self, address: str) -> MailboxFacts | None:
        """The facts ``load`` read for ``address`` (no statement; None when it did not)."""
        return self._by_address.get(address)

    def patient(self, mailbox: MailboxFacts) -> PatientContact | None:
        """The patient behind a patient mailbox (None for the professional side)."""
        return self._patient_of.get(mailbox.id) if mailbox.is_patient else None

    def patient_id(self, mailbox: MailboxFacts) -> int | None:
        patient = self.patient(mailbox)
        return patient.id if patient is not None else None


class ConversationSnapshot:
    """The conversations of each patient/professional pair of a batch, kept current by the batch."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[int, int], list[ConversationFacts]] = {}

    async def load(self, session: AsyncSession, pairs: Iterable[tuple[int, int]]) -> None:
        """Read the conversations of every (patient mailbox, professional mailbox) pair at once."""
        wanted = sorted(set(pairs) - set(self._pairs))
        if not wanted:
            return
        for pair in wanted:
            self._pairs[pair] = []
        rows = await session.execute(_CONVERSATIONS_OF, pairs_values("pairs", wanted))
        for row in rows:
            self._pairs[(row.patient_mailbox_id, row.professional_mailbox_id)].append(
                ConversationFacts(
                    row.id,
                    row.patient_mailbox_id,
                    row.professional_mailbox_id,
                    row.state,
                    frozenset(),
                )
            )

    def of(
        self, patient_mailbox_id: int, professional_mailbox_id: int
    ) -> list[ConversationFacts] | None:
        """The pair's conversations (oldest first), or None if the pair was not loaded."""
        found = self._pairs.get((patient_mailbox_id, professional_mailbox_id))
        return list(found) if found is not None else None

    def opened(
        self, conversation_id: int, patient_mailbox_id: int, professional_mailbox_id: int
    ) -> None:
        pair = (patient_mailbox_id, professional_mailbox_id)
        if pair in self._pairs:
            self._pairs[pair].append(
                ConversationFacts(
                    conversation_id,
                    patient_mailbox_id,
                    professional_mailbox_id,
                    ConversationState.OPEN,
                )
            )

    def closed(self, conversation_id: int) -> None:
        for facts in self._pairs.values():
            for index, conversation in enumerate(facts):
                if conversation.id == conversation_id:
                    facts[index] = ConversationFacts(
                        conversation.id,
                        conversation.patient_mailbox_id,
                        conversation.professional_mailbox_id,
                        ConversationState.CLOSED,
                        conversation.message_ids,
                    )
