"""Professionals of the directory as the "Mon dossier" pages show them: found by name or RPPS,
described.

Name search compares case-insensitively at the start of a word; SQLite's
``lower``/``upper`` only fold ASCII, so both are tried (an accented capital
matches through ``upper``, an accented small letter through ``lower``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.identifiers import PROFESSIONS, normalise_id_nat
from mss.directory.models import Organisation, Professional
from mss.errors import InvalidInput

MAX_RESULTS = 20
MIN_QUERY_LENGTH = 2


@dataclass(frozen=True)
class ProfessionalCard:
    """What the pages say about one professional."""

    id: int | None  # None: an idNat the directory no longer knows
    id_nat: str
    name: str
    profession_code: str = ""
    profession: str = ""
    institution: str = ""

    @property
    def rpps(self) -> str:
        """The RPPS number (the idNat without its leading 8), or the idNat itself."""
        return (
            self.id_nat[1:]
            if self.id_nat.startswith("8") and len(self.id_nat) == 12
            else self.id_nat
        )


def card(professional: Professional, institution: str = "") -> ProfessionalCard:
    return ProfessionalCard(
        professional.id,
        professional.id_nat,
        professional.display_name,
        professional.profession_code,
        PROFESSIONS.get(professional.profession_code, ""),
        institution,
    )


def unknown_card(id_nat: str) -> ProfessionalCard:
    return ProfessionalCard(None, id_nat, f"Professionnel n° {id_nat}")


def _query() -> Select[Professional, str]:
    return select(Professional, Organisation.name).outerjoin(
        Organisation, Organisation.id == Professional.organisation_id
    )


def _starts_word(column: Any, text: str) -> ColumnElement[bool]:
    tests = []
    for folded, wanted in ((func.lower(column), text.lower()), (func.upper(column), text.upper())):
        tests += [
            folded.startswith(wanted, autoescape=True),
            folded.contains(" " + wanted, autoescape=True),
            folded.contains("-" + wanted, autoescape=True),
        ]
    return or_(*tests)


def _id_nat(text: str) -> str | None:
    compact = "".join(text.split())
    if not compact.isdigit():
        return None
    try:
        return normalise_id_nat(compact, check_key=False)
    except InvalidInput:
        return None


async def search_professionals(session: AsyncSession, text: str) -> list[ProfessionalCard]:
    """Professionals whose name starts a word with ``text``, or whose RPPS or idNat it is."""
    text = " ".join(text.split())
    if len(text) < MIN_QUERY_LENGTH:
        return []
    id_nat = _id_nat(text)
    if id_nat is not None:
        query = _query().where(Professional.id_nat == id_nat)
    else:
        words = text.split(" ")
        query = _query().where(
            *[
                or_(
                    _starts_word(Professional.family_name, w),
                    _starts_word(Professional.given_names, w),
                )
                for w in words
            ]
        )
    rows = (
        await session.execute(
            query.order_by(
                Professional.family_name, Professional.given_names, Professional.id
            ).limit(MAX_RESULTS)
        )
    ).all()
    return [card(professional, institution or "") for professional, institution in rows]


async def find_card(session: AsyncSession, id_nat: str) -> ProfessionalCard | None:
    """The directory's professional with this idNat (or bare RPPS), or None."""
    wanted = _id_nat(id_nat) or id_nat.strip()
    row = (await session.execute(_query().where(Professional.id_nat == wanted))).first()
    return card(row[0], row[1] or "") if row is not None else None


async def cards_for(session: AsyncSession, id_nats: Iterable[str]) -> dict[str, ProfessionalCard]:
    """A card for each idNat, from the directory when it knows it."""
    wanted = sorted(set(id_nats))
    found: dict[str, ProfessionalCard] = {}
    if wanted:
        rows = (await session.execute(_query().where(Professional.id_nat.in_(wanted)))).all()
        found = {p.id_nat: card(p, institution or "") for p, institution in rows}
    return {id_nat: found.get(id_nat) or unknown_card(id_nat) for id_nat in wanted}
