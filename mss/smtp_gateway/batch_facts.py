"""Conversation facts for a whole batch of deliveries, read with one statement.

For every patient/professional pair of a batch the gateway needs the conversations
between them (the directory facts are ``mss.directory.batch_facts``). The snapshot
is taken inside the delivery transaction; changes the batch itself makes (a
conversation opened or closed) are applied to it as they happen.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.conversations import Conversation, ConversationState
from mss.db import pairs_in, pairs_values
from mss.policy.facts import ConversationFacts

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
