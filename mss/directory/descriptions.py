"""Mailboxes with who holds them: the professional (if personal) and the organisation.

What a page needs to name a correspondent, read for many mailboxes in one statement.
Statements built once at import (``bindparam``), so a look-up costs its execution only.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.models import Mailbox, Organisation, Professional

Described = tuple[Mailbox, Professional | None, Organisation | None]

_DESCRIBED = (
    select(Mailbox, Professional, Organisation)
    .outerjoin(Professional, Professional.id == Mailbox.professional_id)
    .outerjoin(
        Organisation,
        Organisation.id == func.coalesce(Mailbox.organisation_id, Professional.organisation_id),
    )
)
_IDS = Mailbox.id.in_(bindparam("ids", expanding=True))
_ADDRESSES = Mailbox.address.in_(bindparam("addresses", expanding=True))
_BY_IDS = _DESCRIBED.where(_IDS)
_BY_ADDRESSES = _DESCRIBED.where(_ADDRESSES)
_BY_EITHER = _DESCRIBED.where(or_(_IDS, _ADDRESSES))
_BY_LOWER_ADDRESSES = _DESCRIBED.where(
    func.lower(Mailbox.address).in_(bindparam("addresses", expanding=True))
)


async def describe_mailboxes(
    session: AsyncSession,
    *,
    ids: Sequence[int] = (),
    addresses: Sequence[str] = (),
    lower_case: bool = False,
) -> list[Described]:
    """The mailboxes with one of ``ids`` or ``addresses`` (as stored; compared in lower case with
    ``lower_case``, for addresses only), each with its professional and organisation; one
    statement."""
    values: dict[str, list[int] | list[str]] = {}
    if ids and not lower_case:
        values["ids"] = list(ids)
    if addresses:
        values["addresses"] = list(addresses)
    if not values:
        return []
    if lower_case:
        query = _BY_LOWER_ADDRESSES
    elif "ids" in values:
        query = _BY_EITHER if "addresses" in values else _BY_IDS
    else:
        query = _BY_ADDRESSES
    rows = await session.execute(query, values)
    return [(mailbox, professional, organisation) for mailbox, professional, organisation in rows]
