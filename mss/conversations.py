"""Conversations between one patient mailbox and one professional-side mailbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    and_,
    bindparam,
    column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow
from mss.policy.vocabulary import ConversationState

if TYPE_CHECKING:
    from mss.policy.facts import ConversationFacts


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_pair", "patient_mailbox_id", "professional_mailbox_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"))
    professional_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"))
    state: Mapped[ConversationState] = mapped_column(
        Enum(
            ConversationState,
            name="conversation_state",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=ConversationState.OPEN,
    )
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# -- store functions (the caller's session, so they join its transaction) -------------------

_OF_PATIENT = select(Conversation).where(
    Conversation.patient_mailbox_id == bindparam("patient_mailbox_id"),
    Conversation.id.in_(bindparam("ids", expanding=True)),
)


async def patient_conversations(
    session: AsyncSession, patient_mailbox_id: int, ids: Iterable[int]
) -> dict[int, Conversation]:
    """The conversations of ``ids`` that belong to this patient mailbox, by id; one statement."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.scalars(
        _OF_PATIENT, {"patient_mailbox_id": patient_mailbox_id, "ids": wanted}
    )
    return {row.id: row for row in rows}


async def find_conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    """The conversation with this id (``session.get``: none read when the session holds it, as
    after the portal's ``find_patient_entry``)."""
    return await session.get(Conversation, conversation_id)


async def find_patient_conversation(
    session: AsyncSession, patient_mailbox_id: int, conversation_id: int
) -> Conversation | None:
    """One conversation of this patient mailbox (None when it is another mailbox's)."""
    row = await find_conversation(session, conversation_id)
    return row if row is not None and row.patient_mailbox_id == patient_mailbox_id else None


_FACTS_STATEMENTS: dict[tuple[bool, bool], Any] = {}


def _facts_statement(by_professional: bool, cited: bool) -> Any:
    """``conversation_facts``'s statement for one shape of question, built on first use
    (building it costs more than running it): each conversation asked about, once per cited
    Message-ID among its messages (once with None when it has none), in plain rows."""
    found = _FACTS_STATEMENTS.get((by_professional, cited))
    if found is not None:
        return found
    # The stored messages' two columns this question reads, named rather than imported: the
    # message store's models import this module (messages.conversation_id refers to it).
    stored = table("messages", column("conversation_id"), column("message_id_header"))

    wanted: Any = bindparam("wanted", expanding=True)
    conditions = []
    if by_professional:
        conditions.append(
            Conversation.professional_mailbox_id == bindparam("professional_mailbox_id")
        )
    columns: list[Any] = [
        Conversation.id,
        Conversation.patient_mailbox_id,
        Conversation.professional_mailbox_id,
        Conversation.state,
    ]
    if cited:
        cited_by = select(stored.c.conversation_id).where(
            stored.c.message_id_header.in_(wanted), stored.c.conversation_id.is_not(None)
        )
        conditions.append(Conversation.id.in_(cited_by))
        columns.append(stored.c.message_id_header)
    query = select(*columns).where(
        Conversation.patient_mailbox_id == bindparam("patient_mailbox_id"), or_(*conditions)
    )
    if cited:
        query = query.outerjoin(
            stored,
            and_(
                stored.c.conversation_id == Conversation.id, stored.c.message_id_header.in_(wanted)
            ),
        )
    found = _FACTS_STATEMENTS[(by_professional, cited)] = query.order_by(Conversation.id)
    return found


async def conversation_facts(
    session: AsyncSession,
    patient_mailbox_id: int,
    professional_mailbox_id: int | None = None,
    referenced_message_ids: Iterable[str] = (),
) -> list[ConversationFacts]:
    """The conversations of a patient with one professional-side mailbox, and those a reply cites.

    Each comes with those of its messages' Message-IDs that ``referenced_message_ids``
    cites, which is what a patient's In-Reply-To/References must point at.
    """
    from mss.policy.facts import ConversationFacts

    wanted = [m for m in referenced_message_ids if m]
    if professional_mailbox_id is None and not wanted:
        return []
    values: dict[str, Any] = {"patient_mailbox_id": patient_mailbox_id}
    if professional_mailbox_id is not None:
        values["professional_mailbox_id"] = professional_mailbox_id
    if wanted:
        values["wanted"] = wanted
    # One statement; only the cited Message-IDs matter (the policy intersects them with the
    # references), so a long conversation does not cost a long read on every message.
    statement = _facts_statement(professional_mailbox_id is not None, bool(wanted))
    rows: dict[int, tuple[int, int, ConversationState]] = {}
    ids: dict[int, set[str]] = {}
    for row in await session.execute(statement, values):
        rows.setdefault(row[0], (row[1], row[2], row[3]))
        cited = ids.setdefault(row[0], set())
        if wanted and row[4] is not None:
            cited.add(row[4])
    return [
        ConversationFacts(id_, patient_side, professional_side, state, frozenset(ids[id_]))
        for id_, (patient_side, professional_side, state) in rows.items()
    ]


async def open_conversation(
    session: AsyncSession, patient_mailbox_id: int, professional_mailbox_id: int
) -> Conversation:
    """Start a conversation (the professional side writes first, or the pharmacy exception)."""
    conversation = Conversation(
        patient_mailbox_id=patient_mailbox_id,
        professional_mailbox_id=professional_mailbox_id,
        state=ConversationState.OPEN,
        opened_at=utcnow(),
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def close_conversation(session: AsyncSession, conversation_id: int) -> None:
    """Close a conversation: the patient can no longer reply in it."""
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(state=ConversationState.CLOSED, closed_at=utcnow())
    )
