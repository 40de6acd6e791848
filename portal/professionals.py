"""Professionals of the directory as the "Mon dossier" pages show them: found by name or RPPS,
described (the directory reads them: ``mss.directory.professionals``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.identifiers import PROFESSIONS, normalise_id_nat
from mss.directory.models import Professional
from mss.directory.professionals import professionals_by_id_nat, professionals_named
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
        found = list((await professionals_by_id_nat(session, [id_nat])).values())
    else:
        found = await professionals_named(session, text.split(" "), MAX_RESULTS)
    return [card(professional, institution) for professional, institution in found]


async def find_card(session: AsyncSession, id_nat: str) -> ProfessionalCard | None:
    """The directory's professional with this idNat (or bare RPPS), or None."""
    wanted = _id_nat(id_nat) or id_nat.strip()
    found = (await professionals_by_id_nat(session, [wanted])).get(wanted)
    return card(*found) if found is not None else None


async def cards_for(session: AsyncSession, id_nats: Iterable[str]) -> dict[str, ProfessionalCard]:
    """A card for each idNat, from the directory when it knows it."""
    wanted = sorted(set(id_nats))
    found = {
        id_nat: card(professional, institution)
        for id_nat, (professional, institution) in (
            await professionals_by_id_nat(session, wanted)
        ).items()
    }
    return {id_nat: found.get(id_nat) or unknown_card(id_nat) for id_nat in wanted}
