"""Professionals with the name of their organisation: by idNat, or found by the words of a name.

Name search compares case-insensitively at the start of a word; SQLite's
``lower``/``upper`` only fold ASCII, so both are tried (an accented capital
matches through ``upper``, an accented small letter through ``lower``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.models import Organisation, Professional

# A professional and their organisation's name ("" when they have none).
WithInstitution = tuple[Professional, str]


def _query() -> Select[Professional, str | None]:
    return select(Professional, Organisation.name).outerjoin(
        Organisation, Organisation.id == Professional.organisation_id
    )


def _rows(rows: Iterable[Any]) -> list[WithInstitution]:
    return [(professional, institution or "") for professional, institution in rows]


async def professionals_by_id_nat(
    session: AsyncSession, id_nats: Iterable[str]
) -> dict[str, WithInstitution]:
    """The professionals of these idNats (as stored) the directory knows, by idNat; one
    statement."""
    wanted = sorted(set(id_nats))
    if not wanted:
        return {}
    rows = await session.execute(_query().where(Professional.id_nat.in_(wanted)))
    return {found[0].id_nat: found for found in _rows(rows)}


def _starts_word(column: Any, text: str) -> ColumnElement[bool]:
    tests = []
    for folded, wanted in ((func.lower(column), text.lower()), (func.upper(column), text.upper())):
        tests += [
            folded.startswith(wanted, autoescape=True),
            folded.contains(" " + wanted, autoescape=True),
            folded.contains("-" + wanted, autoescape=True),
        ]
    return or_(*tests)


async def professionals_named(
    session: AsyncSession, words: Sequence[str], limit: int
) -> list[WithInstitution]:
    """Professionals a word of whose family or given names starts with each of ``words``, by
    name; at most ``limit``."""
    query = _query().where(
        *[
            or_(
                _starts_word(Professional.family_name, word),
                _starts_word(Professional.given_names, word),
            )
            for word in words
        ]
    )
    rows = await session.execute(
        query.order_by(Professional.family_name, Professional.given_names, Professional.id).limit(
            limit
        )
    )
    return _rows(rows)
