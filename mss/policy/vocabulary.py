"""The words the policy decides with: kinds and states of mailboxes, patients and conversations.

Defined here, at the bottom of the import graph, so that ``mss.policy`` needs
nothing else of ``mss``: the database models (``mss.directory.models``,
``mss.conversations``) import these enums for their columns, not the other
way round. The stored values are the enums' values; do not change them
without a migration.
"""

from __future__ import annotations

import enum


class MailboxKind(str, enum.Enum):
    PER = "PER"  # a professional's personal mailbox
    ORG = "ORG"  # a service of an organisation
    APP = "APP"  # an information system (hospital convocations...)
    CAB = "CAB"  # a practice shared by its professionals
    PAT = "PAT"  # a patient's mailbox, reached through the portal only


class MailboxState(str, enum.Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class PatientState(str, enum.Enum):
    CREATED = "created"
    OPPOSITION_WINDOW = "opposition_window"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    OPPOSED = "opposed"
    CLOSED = "closed"


class OrganisationKind(str, enum.Enum):
    HOSPITAL = "hospital"
    PHARMACY = "pharmacy"
    PRACTICE = "practice"
    LABORATORY = "laboratory"
    OTHER = "other"


class ConversationState(str, enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


PROFESSIONAL_KINDS = frozenset({MailboxKind.PER, MailboxKind.ORG, MailboxKind.APP, MailboxKind.CAB})
