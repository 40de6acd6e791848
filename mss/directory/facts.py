"""Directory rows turned into the plain facts ``mss.policy`` decides on.

Read on every RCPT and delivery (the gateway), and by the portal, the agenda and the DMP
bridge, so they live with the directory rather than in one of their users.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from mss.config import Settings
from mss.db import Database
from mss.directory.identifiers import normalise_address, normalise_dn
from mss.directory.models import Mailbox, Patient, TrustedDomain
from mss.directory.store import find_mailbox, is_trusted_operator_dn, trusted_domain
from mss.errors import InvalidInput
from mss.policy import (
    MailboxFacts,
    PeerCertificateFacts,
    RecipientFacts,
    domain_of,
    normalize_address,
)


@dataclass(frozen=True)
class PatientContact:
    """A patient's id and the channels a notice goes to (the job reads the current ones)."""

    id: int
    email: str | None
    phone: str | None


def local_domains(settings: Settings) -> frozenset[str]:
    """The domains this hub delivers itself: professionals' and patients'."""
    return frozenset({settings.domain.lower(), settings.patient_domain.lower()})


def facts_of(mailbox: Mailbox, patient: Patient | None) -> MailboxFacts:
    return MailboxFacts(
        id=mailbox.id,
        address=mailbox.address.lower(),
        kind=mailbox.kind,
        state=mailbox.state,
        pharmacy=bool(mailbox.pharmacy),
        patient_state=patient.state if patient is not None else None,
        opposition_deadline=patient.opposition_deadline if patient is not None else None,
    )


_mailboxes, _patients = Mailbox.__table__.c, Patient.__table__.c
# The facts of mailboxes and their patients as plain rows (Core: read on every RCPT and delivery).
FACTS = select(
    _mailboxes.id,
    _mailboxes.address,
    _mailboxes.kind,
    _mailboxes.state,
    _mailboxes.pharmacy,
    _patients.id.label("patient_id"),
    _patients.state.label("patient_state"),
    _patients.opposition_deadline,
    _patients.email,
    _patients.phone,
).select_from(Mailbox.__table__.outerjoin(Patient.__table__, _patients.id == _mailboxes.patient_id))
_FACTS_AT = FACTS.where(_mailboxes.address == bindparam("address"))
_FACTS_OF_ID = FACTS.where(_mailboxes.id == bindparam("id"))


def facts_of_row(row: Row[*tuple[Any, ...]]) -> MailboxFacts:
    """``facts_of`` for a row of ``FACTS``."""
    return MailboxFacts(
        id=row.id,
        address=row.address.lower(),
        kind=row.kind,
        state=row.state,
        pharmacy=bool(row.pharmacy),
        patient_state=row.patient_state,
        opposition_deadline=row.opposition_deadline,
    )


async def facts_row(session: AsyncSession, address: str) -> Row[*tuple[Any, ...]] | None:
    """The ``FACTS`` row of the mailbox at ``address``, or None when unknown.

    One statement on the unique index; an address stored in another case is then
    looked up the directory's way (``find_mailbox``).
    """
    try:
        wanted = normalise_address(address)
    except InvalidInput:
        return None
    row = (await session.execute(_FACTS_AT, {"address": wanted})).first()
    if row is None:
        mailbox = await find_mailbox(session, address)
        if mailbox is not None:
            row = (await session.execute(_FACTS_OF_ID, {"id": mailbox.id})).first()
    return row


async def mailbox_facts(session: AsyncSession, address: str) -> MailboxFacts | None:
    """A local mailbox (with its patient's account state), or None when unknown."""
    row = await facts_row(session, address)
    return facts_of_row(row) if row is not None else None


async def mailbox_facts_by_id(session: AsyncSession, mailbox_id: int) -> MailboxFacts | None:
    """By id, through the session's identity map: the portal has usually loaded the mailbox
    already."""
    mailbox = await session.get(Mailbox, mailbox_id)
    if mailbox is None:
        return None
    patient = await session.get(Patient, mailbox.patient_id) if mailbox.patient_id else None
    return facts_of(mailbox, patient)


async def recipient_facts(
    session: AsyncSession, settings: Settings, address: str
) -> RecipientFacts:
    """What the directory knows about one RCPT: a local mailbox, or whether its domain is
    trusted."""
    address = normalize_address(address)
    domain = domain_of(address)
    if domain in local_domains(settings):
        return RecipientFacts(address, True, await mailbox_facts(session, address))
    return RecipientFacts(address, False, None, await trusted_domain(session, domain) is not None)


# The tables whose rows make RCPT facts: a write to one of them empties the cache below.
_DIRECTORY_TABLES = frozenset({"mailboxes", "patients", "trusted_domains"})


class RecipientFactsCache:
    """The RCPT facts (``recipient_facts``) of addresses that exist, remembered ``seconds``.

    RCPT is the early answer: delivery reads every recipient's facts again inside its own
    transaction and bounces one it finds unreachable (``mss.smtp_gateway.delivery``), so a stale
    entry can at worst turn a refusal at RCPT into a bounce, never deliver where the directory
    says no. An unknown address (or an untrusted domain) is never remembered: a mailbox created
    now is reachable at once. A write to the directory's tables through this process's database
    empties the cache when it runs (``recipient_cache`` watches the engine); one from another
    process (the CLI, another SMTP process) is seen within ``seconds``.
    """

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: OrderedDict[str, tuple[float, RecipientFacts]] = OrderedDict()

    def get(self, address: str) -> RecipientFacts | None:
        found = self._entries.get(address)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._entries[address]
            return None
        return found[1]

    def remember(self, address: str, facts: RecipientFacts) -> None:
        if self.seconds <= 0 or (facts.mailbox is None and not facts.domain_trusted):
            return
        self._entries[address] = (time.monotonic() + self.seconds, facts)
        self._entries.move_to_end(address)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_caches: weakref.WeakKeyDictionary[Database, RecipientFactsCache] = weakref.WeakKeyDictionary()


def recipient_cache(db: Database, seconds: float) -> RecipientFactsCache:
    """The process's RCPT facts cache for ``db`` (made, and the engine watched, on first use)."""
    cache = _caches.get(db)
    if cache is None:
        cache = _caches[db] = RecipientFactsCache(seconds)
        _watch(db.engine.sync_engine, weakref.ref(cache))
    cache.seconds = seconds
    return cache


def _watch(engine: Engine, cache: weakref.ref[RecipientFactsCache]) -> None:
    def written(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: Any
    ) -> None:
        compiled = context.compiled
        if compiled is None:  # a textual statement: a write when it names a directory table
            lowered = statement.lower()
            if not any(name in lowered for name in _DIRECTORY_TABLES):
                return
        elif not (context.isinsert or context.isupdate or context.isdelete):
            return
        else:
            table = getattr(compiled.statement, "table", None)
            if getattr(table, "name", None) not in _DIRECTORY_TABLES:
                return
        found = cache()
        if found is not None:
            found.clear()

    event.listen(engine, "after_cursor_execute", written)


async def mailbox_by_certificate(session: AsyncSession, sha256: str) -> MailboxFacts | None:
    """The mailbox whose registered client certificate has this SHA-256 fingerprint."""
    mailbox = (
        await session.scalars(select(Mailbox).where(Mailbox.client_cert_sha256 == sha256.lower()))
    ).first()
    return facts_of(mailbox, None) if mailbox is not None else None


async def operator_trust(
    session: AsyncSession, certificate: PeerCertificateFacts
) -> tuple[bool, frozenset[str]]:
    """Is the operator's DN on the trust list, and which trusted domains does it speak for?"""
    dn_trusted = await is_trusted_operator_dn(session, certificate.subject_dn)
    domains: set[str] = set()
    if dn_trusted:
        try:
            dn = normalise_dn(certificate.subject_dn)
        except InvalidInput:
            dn = certificate.subject_dn
        domains |= set(
            (
                await session.scalars(
                    select(TrustedDomain.domain).where(
                        TrustedDomain.operator_dn == dn, TrustedDomain.enabled.is_(True)
                    )
                )
            ).all()
        )
    for domain in certificate.domains:
        if await trusted_domain(session, domain) is not None:
            domains.add(domain)
    return dn_trusted, frozenset(d.lower() for d in domains)
