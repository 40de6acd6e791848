"""The directory API other packages call: look-ups, creation, mailbox passwords.

Every function takes the caller's ``AsyncSession``, so it joins the
caller's transaction (``async with db.write() as session``). Values are
normalised with ``mss.directory.identifiers`` before they are stored or
looked up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import SQLColumnExpression, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.config import Settings
from mss.conversations import Conversation
from mss.crypto.passwords import (
    PasswordCheck,
    hash_secret,
    hash_secret_now,
    verify_secret,
    verify_secret_now,
)
from mss.db import utcnow
from mss.directory.identifiers import (
    normalise_address,
    normalise_dn,
    normalise_domain,
    normalise_finess,
    normalise_id_nat,
    normalise_ins,
    normalise_phone,
    normalise_profession_code,
)
from mss.directory.models import (
    Guardianship,
    Mailbox,
    MailboxKind,
    MailboxState,
    Organisation,
    OrganisationKind,
    Patient,
    PatientState,
    Professional,
    TrustedDomain,
)
from mss.errors import InvalidInput
from mss.mailbox.listing import conversations_stamp, entry_with_its_mailbox, folders_stamp
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.store import ensure_folders
from mss.policy.lifecycle import MIN_PASSWORD_LENGTH

# -- look-ups ---------------------------------------------------------------------------


async def find_mailbox(session: AsyncSession, address: str) -> Mailbox | None:
    """The mailbox with this address, whatever its case; None when unknown or malformed."""
    try:
        wanted = normalise_address(address)
    except InvalidInput:
        return None
    # Addresses are stored normalised, so the unique index answers; lower() catches rows
    # written by hand with capitals.
    found = (await session.scalars(_MAILBOX_BY_ADDRESS, {"address": wanted})).first()
    if found is not None:
        return found
    return (await session.scalars(_MAILBOX_BY_LOWER_ADDRESS, {"address": wanted})).first()


# Built once: every login and RCPT asks (building the statement cost more than running it).
_MAILBOX_BY_ADDRESS = select(Mailbox).where(Mailbox.address == bindparam("address"))
_MAILBOX_BY_LOWER_ADDRESS = select(Mailbox).where(
    func.lower(Mailbox.address) == bindparam("address")
)


async def find_patient_by_ins(session: AsyncSession, ins: str) -> Patient | None:
    """The patient with this INS matricule; None when unknown or not a valid INS."""
    try:
        wanted = normalise_ins(ins)
    except InvalidInput:
        return None
    return (await session.scalars(select(Patient).where(Patient.ins == wanted))).first()


async def find_patient_by_email(session: AsyncSession, email: str) -> Patient | None:
    """The patient whose personal e-mail (for notifications) is this one, or whose PAT mailbox it
    is."""
    try:
        wanted = normalise_address(email)
    except InvalidInput:
        return None
    patient = (
        await session.scalars(
            select(Patient).where(func.lower(Patient.email) == wanted).order_by(Patient.id)
        )
    ).first()
    if patient is not None:
        return patient
    mailbox = await find_mailbox(session, wanted)
    if mailbox is None or mailbox.patient_id is None:
        return None
    return await session.get(Patient, mailbox.patient_id)


async def find_professional_by_id_nat(session: AsyncSession, id_nat: str) -> Professional | None:
    """The professional with this idNat (a bare RPPS is read as 8 + RPPS)."""
    try:
        wanted = normalise_id_nat(id_nat, check_key=False)
    except InvalidInput:
        return None
    return (
        await session.scalars(select(Professional).where(Professional.id_nat == wanted))
    ).first()


async def find_organisation_by_finess(session: AsyncSession, finess: str) -> Organisation | None:
    """The organisation with this FINESS number."""
    try:
        wanted = normalise_finess(finess, check_key=False)
    except InvalidInput:
        return None
    return (
        await session.scalars(select(Organisation).where(Organisation.finess == wanted))
    ).first()


async def patient_by_id(
    session: AsyncSession, patient_id: int, *, for_update: bool = False
) -> Patient | None:
    """The patient with this id (``session.get``: a row the session already holds is not read
    again, unless ``for_update`` asks for the row locked, SELECT ... FOR UPDATE)."""
    return await session.get(Patient, patient_id, with_for_update=for_update)


async def professional_by_id(session: AsyncSession, professional_id: int) -> Professional | None:
    """The professional with this id (not read again when the session already holds the row)."""
    return await session.get(Professional, professional_id)


async def personal_mailboxes(session: AsyncSession, professional_id: int) -> list[Mailbox]:
    """The professional's personal (PER) mailboxes, active ones first, then by address."""
    rows = await session.scalars(
        select(Mailbox)
        .where(Mailbox.professional_id == professional_id, Mailbox.kind == MailboxKind.PER)
        .order_by(Mailbox.address)
    )
    return sorted(rows, key=lambda m: m.state is not MailboxState.ACTIVE)


_PATIENT_MAILBOX = select(Mailbox).where(Mailbox.patient_id == bindparam("patient_id"))
# The entry's folder, message and conversation come from the mailbox store's statement, the
# mailbox row and its owner from here: one statement, built once (the portal's message pages).
_PATIENT_ENTRY = entry_with_its_mailbox(Mailbox, Mailbox.id).where(
    Mailbox.patient_id == bindparam("patient_id")
)


async def find_patient_entry(
    session: AsyncSession, patient_id: int, entry_id: int
) -> tuple[Mailbox, FolderEntry, Folder, StoredMessage, Conversation | None] | None:
    """A folder entry of the patient's own PAT mailbox, with that mailbox, its folder, its message
    and the message's conversation (None outside any), in one statement; None when the entry is
    not in that mailbox."""
    row = (
        await session.execute(_PATIENT_ENTRY, {"patient_id": patient_id, "entry_id": entry_id})
    ).first()
    if row is None:
        return None
    mailbox, entry, folder, message, conversation = row
    return mailbox, entry, folder, message, conversation


_PATIENT_MAILBOX_STAMP = select(
    Mailbox.id, *folders_stamp(Mailbox.id), *conversations_stamp(Mailbox.id)
).where(Mailbox.patient_id == bindparam("patient_id"))


@dataclass(frozen=True)
class MailboxStamp:
    """A patient mailbox's id, and values that change with its entries and conversations."""

    mailbox_id: int
    stamp: tuple[int, ...]


def patient_mailbox_stamp_columns(patient_id: SQLColumnExpression[int | None]) -> list[Any]:
    """The PAT mailbox id of the patient ``patient_id`` names, then its stamp's columns, as
    scalar subqueries another package's statement (the portal's session, built once) adds to
    its own; ``mailbox_stamp_of`` reads them back."""
    mailbox_id = (
        select(Mailbox.id).where(Mailbox.patient_id == patient_id).limit(1).scalar_subquery()
    )
    return [mailbox_id, *folders_stamp(mailbox_id), *conversations_stamp(mailbox_id)]


def mailbox_stamp_of(values: Sequence[Any]) -> MailboxStamp | None:
    """The ``MailboxStamp`` of the values of ``patient_mailbox_stamp_columns``; None when the
    patient has no mailbox."""
    mailbox_id, *stamp = values
    if mailbox_id is None:
        return None
    return MailboxStamp(mailbox_id, tuple(int(value or 0) for value in stamp))


async def patient_mailbox_stamp(session: AsyncSession, patient_id: int) -> MailboxStamp | None:
    """The patient's PAT mailbox with its stamp (``mss.mailbox.listing.folders_stamp``,
    ``conversations_stamp``), or None; one statement, so a list kept from an earlier read is
    known to be still right without reading it again."""
    row = (await session.execute(_PATIENT_MAILBOX_STAMP, {"patient_id": patient_id})).first()
    return mailbox_stamp_of(row) if row is not None else None


async def find_patient_mailbox(session: AsyncSession, patient_id: int) -> Mailbox | None:
    """The PAT mailbox of a patient, or None (a statement built once: the portal's every page)."""
    return (await session.scalars(_PATIENT_MAILBOX, {"patient_id": patient_id})).first()


async def personal_mailbox(session: AsyncSession, professional_id: int) -> Mailbox | None:
    """A professional's active personal (PER) mailbox, or None."""
    query = select(Mailbox).where(
        Mailbox.professional_id == professional_id,
        Mailbox.kind == MailboxKind.PER,
        Mailbox.state == MailboxState.ACTIVE,
    )
    return (await session.scalars(query.order_by(Mailbox.id))).first()


async def pharmacy_mailboxes(session: AsyncSession) -> list[Mailbox]:
    """The active organisational mailboxes of pharmacies, by name (the patient may write to
    them)."""
    query = (
        select(Mailbox)
        .where(
            Mailbox.kind == MailboxKind.ORG,
            Mailbox.pharmacy.is_(True),
            Mailbox.state == MailboxState.ACTIVE,
        )
        .order_by(Mailbox.display_name, Mailbox.address)
    )
    return list((await session.scalars(query)).all())


async def trusted_domain(session: AsyncSession, domain: str) -> TrustedDomain | None:
    """An enabled trust-list entry for this domain (one of its operators), or None."""
    try:
        wanted = normalise_domain(domain)
    except InvalidInput:
        return None
    query = (
        select(TrustedDomain)
        .where(TrustedDomain.domain == wanted, TrustedDomain.enabled.is_(True))
        .order_by(TrustedDomain.id)
    )
    return (await session.scalars(query)).first()


async def is_trusted_operator_dn(session: AsyncSession, dn: str, domain: str | None = None) -> bool:
    """True when an enabled trust-list entry names this operator certificate subject DN.

    With ``domain``, the DN must be listed for that domain.
    """
    query = select(TrustedDomain.id).where(
        TrustedDomain.operator_dn == normalise_dn(dn), TrustedDomain.enabled.is_(True)
    )
    if domain is not None:
        try:
            query = query.where(TrustedDomain.domain == normalise_domain(domain))
        except InvalidInput:
            return False
    return (await session.scalars(query.limit(1))).first() is not None


def patient_mailbox_address(settings: Settings, ins: str) -> str:
    """The patient's mailbox address: ``<INS>@patient.<domain>``."""
    return f"{normalise_ins(ins)}@{settings.patient_domain}".lower()


# -- creation -----------------------------------------------------------------------------


async def create_organisation(
    session: AsyncSession,
    *,
    name: str,
    finess: str | None = None,
    kind: OrganisationKind = OrganisationKind.OTHER,
    check_key: bool = True,
) -> Organisation:
    """Add an organisation (FINESS checked when given, its Luhn key unless told not to)."""
    if not name.strip():
        raise InvalidInput("an organisation needs a name")
    organisation = Organisation(
        name=name.strip(),
        kind=kind,
        finess=normalise_finess(finess, check_key=check_key) if finess else None,
    )
    session.add(organisation)
    await session.flush()
    return organisation


async def create_professional(
    session: AsyncSession,
    *,
    id_nat: str,
    family_name: str,
    given_names: str = "",
    profession_code: str = "",
    specialty_code: str = "",
    organisation: Organisation | None = None,
    check_key: bool = True,
) -> Professional:
    """Add a professional identified by idNat (RPPS Luhn key checked unless told not to)."""
    if not family_name.strip():
        raise InvalidInput("a professional needs a family name")
    professional = Professional(
        id_nat=normalise_id_nat(id_nat, check_key=check_key),
        family_name=family_name.strip(),
        given_names=given_names.strip(),
        profession_code=normalise_profession_code(profession_code) if profession_code else "",
        specialty_code=specialty_code.strip(),
        organisation_id=organisation.id if organisation is not None else None,
    )
    session.add(professional)
    await session.flush()
    return professional


@dataclass(frozen=True)
class MailboxOwner:
    """Who a new mailbox belongs to: a professional, an organisation, or both (PER in a service)."""

    professional: Professional | None = None
    organisation: Organisation | None = None


async def create_mailbox(
    session: AsyncSession,
    *,
    address: str,
    kind: MailboxKind,
    owner: MailboxOwner,
    display_name: str = "",
    red_list: bool = False,
    pharmacy: bool = False,
    password: str | None = None,
) -> Mailbox:
    """Add a PER/ORG/APP/CAB mailbox; the address must be free."""
    if kind is MailboxKind.PAT:
        raise InvalidInput("patient mailboxes are created with their patient (create_patient)")
    if kind is MailboxKind.PER and owner.professional is None:
        raise InvalidInput(f"a PER mailbox belongs to a professional; {address} has none")
    if kind is not MailboxKind.PER and owner.organisation is None and owner.professional is None:
        raise InvalidInput(f"a {kind.value} mailbox belongs to an organisation; {address} has none")
    mailbox = Mailbox(
        address=await _free_address(session, address),
        kind=kind,
        display_name=display_name.strip(),
        professional_id=owner.professional.id if owner.professional else None,
        organisation_id=owner.organisation.id if owner.organisation else None,
        red_list=red_list,
        pharmacy=pharmacy,
    )
    if password is not None:
        mailbox.password_hash = await hash_password_async(password)
    session.add(mailbox)
    await session.flush()
    # Folders exist from the start, so concurrent first deliveries never race to create them.
    await ensure_folders(session, mailbox.id)
    return mailbox


async def _free_address(session: AsyncSession, address: str) -> str:
    normalised = normalise_address(address)
    if await find_mailbox(session, normalised) is not None:
        raise InvalidInput(f"mailbox {normalised} already exists")
    return normalised


async def create_patient(
    session: AsyncSession,
    settings: Settings,
    *,
    ins: str,
    family_name: str,
    given_names: str = "",
    birth_date: dt.date | None = None,
    email: str | None = None,
    phone: str | None = None,
    now: dt.datetime | None = None,
) -> Patient:
    """Add a patient in the opposition window, with the PAT mailbox ``<INS>@patient.<domain>``."""
    if not family_name.strip():
        raise InvalidInput("a patient needs a family name")
    normalised_ins = normalise_ins(ins)
    if await find_patient_by_ins(session, normalised_ins) is not None:
        raise InvalidInput(f"a patient with INS {normalised_ins} already exists")
    now = now or utcnow()
    patient = Patient(
        ins=normalised_ins,
        family_name=family_name.strip(),
        given_names=given_names.strip(),
        birth_date=birth_date,
        email=normalise_address(email) if email else None,
        phone=normalise_phone(phone) if phone else None,
        state=PatientState.OPPOSITION_WINDOW,
        state_changed_at=now,
        opposition_deadline=now + dt.timedelta(days=settings.portal.opposition_window_days),
    )
    session.add(patient)
    await session.flush()
    mailbox = Mailbox(
        address=await _free_address(session, patient_mailbox_address(settings, ins)),
        kind=MailboxKind.PAT,
        display_name=patient.display_name,
        patient_id=patient.id,
    )
    session.add(mailbox)
    await session.flush()
    await ensure_folders(session, mailbox.id)
    return patient


async def add_guardian(session: AsyncSession, *, guardian: Patient, minor: Patient) -> bool:
    """Record that ``guardian`` acts for ``minor``; False when it was already recorded."""
    if guardian.id == minor.id:
        raise InvalidInput(f"patient {minor.ins} cannot be their own guardian")
    existing = await session.scalars(
        select(Guardianship.id).where(
            Guardianship.guardian_id == guardian.id, Guardianship.minor_id == minor.id
        )
    )
    if existing.first() is not None:
        return False
    session.add(Guardianship(guardian_id=guardian.id, minor_id=minor.id))
    await session.flush()
    return True


async def claim_totp_step(session: AsyncSession, patient_id: int, secret: str, step: int) -> bool:
    """Record ``step`` as the patient's last accepted TOTP step, only if it comes after the last
    one and the secret is still ``secret``: False when a parallel request claimed it first (one
    conditional UPDATE)."""
    patients = Patient.__table__.c
    claim = (
        update(Patient.__table__)
        .where(
            patients.id == patient_id,
            patients.totp_secret == secret,
            or_(patients.totp_last_step.is_(None), patients.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool((await session.execute(claim)).rowcount == 1)  # type: ignore[attr-defined]


# -- passwords ----------------------------------------------------------------------------


def _password_allowed(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}"
        )


def hash_password(password: str) -> str:
    """An argon2id hash (``mss.crypto.passwords``) on the calling thread: CLI and imports."""
    _password_allowed(password)
    return hash_secret_now(password)


async def hash_password_async(password: str) -> str:
    """``hash_password`` in a worker thread, within the hashing slots."""
    _password_allowed(password)
    return await hash_secret(password)


def check_mailbox_password(mailbox: Mailbox | None, password: str) -> PasswordCheck:
    """Does the password match the mailbox's hash (blocking: prefer the async one)."""
    if mailbox is None:
        return verify_secret_now(None, password)
    return verify_secret_now(mailbox.password_hash, password, account=mailbox.address)


async def check_mailbox_password_async(mailbox: Mailbox | None, password: str) -> PasswordCheck:
    """``check_mailbox_password`` off the event loop; a repeat within the cache's life skips argon2.

    No mailbox (an unknown address) costs the same argon2 work and fails: the time
    of an answer tells nothing of which addresses exist.
    """
    if mailbox is None:
        return await verify_secret(None, password)
    return await verify_secret(mailbox.password_hash, password, account=mailbox.address)


async def rehash_mailbox_password(session: AsyncSession, mailbox: Mailbox, password: str) -> None:
    """After a login whose hash has older parameters: store one of today's, unless it changed
    meanwhile."""
    await session.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox.id, Mailbox.password_hash == mailbox.password_hash)
        .values(password_hash=await hash_secret(password))
    )


async def set_mailbox_password(session: AsyncSession, address: str, password: str) -> Mailbox:
    """Replace the password of a professional, organisational or applicative mailbox."""
    mailbox = await find_mailbox(session, address)
    if mailbox is None:
        raise InvalidInput(f"no mailbox {address} in the directory")
    if mailbox.kind is MailboxKind.PAT:
        raise InvalidInput(
            f"{mailbox.address} is a patient mailbox: patients sign in to the "
            "portal, their mailbox has no password of its own"
        )
    mailbox.password_hash = await hash_password_async(password)
    await session.flush()
    return mailbox
