"""Directory rows turned into the plain facts ``mss.policy`` decides on.

Read on every RCPT and delivery (the gateway), and by the portal, the agenda and the DMP
bridge, so they live with the directory rather than in one of their users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.config import Settings
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
