"""Directory facts for a whole batch of deliveries, read with one statement.

Inside the delivery transaction the gateway needs, for every local recipient,
its mailbox as it is now (closed since RCPT? patient account state?) and its
patient. Reading them once per batch instead of once per recipient keeps the
number of statements of a group commit nearly constant. The snapshot is taken
inside the transaction, so it is as current as a per-recipient read would be.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, bindparam, or_
from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.facts import FACTS, PatientContact, facts_of_row, facts_row
from mss.directory.models import Mailbox
from mss.policy import MailboxFacts

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

    def _remember(self, row: Row[*tuple[Any, ...]]) -> MailboxFacts:
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
