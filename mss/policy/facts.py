"""Plain facts the policy decides on, loaded by the caller (gateway or portal).

Policy functions never read the database: whoever calls them turns rows
into these dataclasses first, so the SMTP gateway and the portal share
exactly the same rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mss.policy.vocabulary import (
    PROFESSIONAL_KINDS,
    ConversationState,
    MailboxKind,
    MailboxState,
    PatientState,
)


@dataclass(frozen=True)
class MailboxFacts:
    """A local mailbox as policy sees it."""

    id: int
    address: str
    kind: MailboxKind
    state: MailboxState = MailboxState.ACTIVE
    pharmacy: bool = False
    patient_state: PatientState | None = None
    opposition_deadline: dt.datetime | None = None

    @property
    def is_patient(self) -> bool:
        return self.kind is MailboxKind.PAT

    @property
    def is_professional_side(self) -> bool:
        return self.kind in PROFESSIONAL_KINDS


@dataclass(frozen=True)
class RecipientFacts:
    """One RCPT address and what the directory knows about it."""

    address: str
    local: bool
    mailbox: MailboxFacts | None = None
    domain_trusted: bool = False


@dataclass(frozen=True)
class ConversationFacts:
    """A conversation between one patient mailbox and one professional-side mailbox."""

    id: int
    patient_mailbox_id: int
    professional_mailbox_id: int
    state: ConversationState
    message_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_open(self) -> bool:
        return self.state is ConversationState.OPEN


@dataclass(frozen=True)
class MessageFacts:
    """What the policy needs from a message's headers."""

    from_addresses: tuple[str, ...]
    subject: str = ""
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    mss_mes: str = ""  # the X-MSS-MES header
    size: int = 0

    @property
    def referenced_ids(self) -> frozenset[str]:
        return frozenset(self.in_reply_to) | frozenset(self.references)


def normalize_address(address: str) -> str:
    """Addresses compare case-insensitively, without angle brackets or spaces."""
    return address.strip().strip("<>").strip().lower()


def domain_of(address: str) -> str:
    return normalize_address(address).rpartition("@")[2]
