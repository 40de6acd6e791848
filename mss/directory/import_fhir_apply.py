"""What one imported FHIR resource does to the directory: add, update or leave as is.

Each ``apply_*`` function returns ``added``, ``updated`` or ``unchanged``
and raises ``InvalidInput`` when the resource conflicts with the
directory (a mailbox owned by someone else, a role naming an unknown
practitioner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.fhir_mailbox import MailboxInfo
from mss.directory.models import Mailbox, MailboxKind, Organisation, OrganisationKind, Professional
from mss.directory.store import (
    MailboxOwner,
    create_mailbox,
    create_organisation,
    create_professional,
    find_mailbox,
    find_organisation_by_finess,
    find_professional_by_id_nat,
)
from mss.errors import InvalidInput


@dataclass(frozen=True)
class OrganisationData:
    finess: str
    name: str
    kind: OrganisationKind | None
    mailboxes: tuple[MailboxInfo, ...]


@dataclass(frozen=True)
class PractitionerData:
    id_nat: str
    family_name: str
    given_names: str
    profession_code: str
    mailboxes: tuple[MailboxInfo, ...]


@dataclass(frozen=True)
class RoleData:
    id_nat: str
    finess: str | None
    profession_code: str
    mailboxes: tuple[MailboxInfo, ...]


def _update(row: Any, wanted: dict[str, Any]) -> bool:
    """Set the fields that differ; True when one did."""
    changed = [key for key, value in wanted.items() if getattr(row, key) != value]
    for key in changed:
        setattr(row, key, wanted[key])
    return bool(changed)


def _owned_by(mailbox: Mailbox, owner: MailboxOwner) -> bool:
    if owner.professional is not None:
        return mailbox.professional_id == owner.professional.id
    return (
        mailbox.professional_id is None
        and owner.organisation is not None
        and mailbox.organisation_id == owner.organisation.id
    )


async def _sync_mailbox(
    session: AsyncSession,
    info: MailboxInfo,
    owner: MailboxOwner,
    default: MailboxKind,
    display_name: str,
) -> bool:
    """Create or update one mailbox of ``owner``; True when something changed."""
    kind = info.kind or default
    if kind is MailboxKind.PER and owner.professional is None:
        raise InvalidInput(
            f"mailbox {info.address} is of type PER (personal) but hangs on an "
            "Organization; personal mailboxes belong to a Practitioner"
        )
    pharmacy = (
        kind is not MailboxKind.PER
        and owner.organisation is not None
        and owner.organisation.kind is OrganisationKind.PHARMACY
    )
    name = info.description or display_name
    mailbox = await find_mailbox(session, info.address)
    if mailbox is None:
        await create_mailbox(
            session,
            address=info.address,
            kind=kind,
            owner=owner,
            display_name=name,
            red_list=info.red_list,
            pharmacy=pharmacy,
        )
        return True
    if not _owned_by(mailbox, owner):
        raise InvalidInput(
            f"mailbox {info.address} already belongs to another "
            f"{'patient' if mailbox.patient_id else 'owner'} in the directory"
        )
    wanted: dict[str, Any] = {
        "kind": kind,
        "red_list": info.red_list,
        "display_name": name,
        "pharmacy": pharmacy,
    }
    if owner.organisation is not None:
        wanted["organisation_id"] = owner.organisation.id
    return _update(mailbox, wanted)


async def _sync_mailboxes(
    session: AsyncSession,
    mailboxes: tuple[MailboxInfo, ...],
    owner: MailboxOwner,
    default: MailboxKind,
    display_name: str,
) -> bool:
    changed = False
    for info in mailboxes:
        changed = await _sync_mailbox(session, info, owner, default, display_name) or changed
    return changed


async def apply_organisation(session: AsyncSession, data: OrganisationData) -> str:
    """Add or update an organisation and its ORG/APP/CAB mailboxes."""
    organisation = await find_organisation_by_finess(session, data.finess)
    if organisation is None:
        organisation = await create_organisation(
            session,
            name=data.name,
            finess=data.finess,
            kind=data.kind or OrganisationKind.OTHER,
            check_key=False,
        )
        outcome = "added"
    else:
        wanted: dict[str, Any] = {"name": data.name}
        if data.kind is not None:
            wanted["kind"] = data.kind
        outcome = "updated" if _update(organisation, wanted) else "unchanged"
    await session.flush()
    changed = await _sync_mailboxes(
        session, data.mailboxes, MailboxOwner(organisation=organisation), MailboxKind.ORG, data.name
    )
    return "updated" if changed and outcome == "unchanged" else outcome


async def apply_practitioner(session: AsyncSession, data: PractitionerData) -> str:
    """Add or update a professional and their mailboxes."""
    professional = await find_professional_by_id_nat(session, data.id_nat)
    if professional is None:
        professional = await create_professional(
            session,
            id_nat=data.id_nat,
            family_name=data.family_name,
            given_names=data.given_names,
            profession_code=data.profession_code,
            check_key=False,
        )
        outcome = "added"
    else:
        wanted: dict[str, Any] = {"family_name": data.family_name, "given_names": data.given_names}
        if data.profession_code:
            wanted["profession_code"] = data.profession_code
        outcome = "updated" if _update(professional, wanted) else "unchanged"
    # The organisation of a mailbox comes from a PractitionerRole, never from the Practitioner.
    changed = await _sync_mailboxes(
        session,
        data.mailboxes,
        MailboxOwner(professional=professional),
        MailboxKind.PER,
        professional.display_name,
    )
    return "updated" if changed and outcome == "unchanged" else outcome


async def _organisation_of(
    session: AsyncSession, professional: Professional
) -> Organisation | None:
    if professional.organisation_id is None:
        return None
    return await session.get(Organisation, professional.organisation_id)


async def apply_role(session: AsyncSession, data: RoleData) -> str:
    """Link a professional to an organisation, set the profession, add the role's mailboxes."""
    professional = await find_professional_by_id_nat(session, data.id_nat)
    if professional is None:
        raise InvalidInput(
            f"the PractitionerRole names practitioner {data.id_nat}, who is "
            "neither imported by this file nor in the directory"
        )
    organisation = None
    if data.finess is not None:
        organisation = await find_organisation_by_finess(session, data.finess)
        if organisation is None:
            raise InvalidInput(
                f"the PractitionerRole names organisation FINESS {data.finess}, "
                "which is neither imported by this file nor in the directory"
            )
    wanted: dict[str, Any] = {}
    if organisation is not None:
        wanted["organisation_id"] = organisation.id
    if data.profession_code:
        wanted["profession_code"] = data.profession_code
    changed = _update(professional, wanted)
    owner = MailboxOwner(
        professional=professional,
        organisation=organisation or await _organisation_of(session, professional),
    )
    changed = (
        await _sync_mailboxes(
            session, data.mailboxes, owner, MailboxKind.PER, professional.display_name
        )
        or changed
    )
    await session.flush()
    return "updated" if changed else "unchanged"
