"""Conversations between one patient mailbox and one professional-side mailbox."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow


class ConversationState(str, enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_pair", "patient_mailbox_id", "professional_mailbox_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"))
    professional_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"))
    state: Mapped[ConversationState] = mapped_column(
        Enum(ConversationState, name="conversation_state", native_enum=False, length=16,
             values_callable=lambda e: [m.value for m in e]),
        default=ConversationState.OPEN)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
