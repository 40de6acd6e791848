"""The medical profile API the portal calls: list, add and remove items of one patient.

Every function takes the caller's session; writes join its transaction and
are audited, so the patient can see who changed the profile.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record
from mss.errors import InvalidInput
from mss.profile.models import ProfileItem

# category -> (title of its section, label of its main field)
CATEGORIES: dict[str, tuple[str, str]] = {
    "allergy": ("Allergies", "Allergie ou intolérance"),
    "medical_history": ("Antécédents médicaux et chirurgicaux", "Antécédent"),
    "family_history": ("Antécédents familiaux", "Antécédent familial"),
    "vaccination": ("Vaccinations", "Vaccin"),
    "treatment": ("Traitements en cours", "Médicament ou traitement"),
}
MAX_LABEL = 255
MAX_DETAIL = 2000


async def profile_of(session: AsyncSession, patient_id: int) -> dict[str, list[ProfileItem]]:
    """Every item of the profile by category, in the order of ``CATEGORIES``, oldest first."""
    rows = (
        await session.scalars(
            select(ProfileItem).where(ProfileItem.patient_id == patient_id).order_by(ProfileItem.id)
        )
    ).all()
    grouped: dict[str, list[ProfileItem]] = {name: [] for name in CATEGORIES}
    for row in rows:
        grouped.setdefault(row.category, []).append(row)
    return grouped


async def add_item(
    session: AsyncSession,
    patient_id: int,
    *,
    category: str,
    label: str,
    detail: str = "",
    when: str = "",
    author_kind: str,
    author: str,
    now: dt.datetime,
    author_name: str = "",
    code: str = "",
    code_system: str = "",
    source: str = "",
) -> ProfileItem:
    """One more item; the label is required, everything is plain text.

    A professional's item names them (``author``: idNat, ``author_name``) and may carry the
    code they chose (``code_system``: a FHIR system URI).
    """
    if category not in CATEGORIES:
        raise InvalidInput("rubrique inconnue")
    label = " ".join(label.split())
    if not label:
        raise InvalidInput(f"{CATEGORIES[category][1]} : ce champ est obligatoire")
    if len(label) > MAX_LABEL or len(detail) > MAX_DETAIL or len(when) > 32:
        raise InvalidInput("le texte est trop long")
    if len(code) > 64 or len(code_system) > 255 or len(author_name) > 255:
        raise InvalidInput("le code est trop long")
    item = ProfileItem(
        patient_id=patient_id,
        category=category,
        label=label,
        detail=detail.strip(),
        when=" ".join(when.split()),
        author_kind=author_kind,
        author=author,
        author_name=author_name,
        code=code,
        code_system=code_system,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    await session.flush()
    record(
        session,
        "profile.item_added",
        actor_kind=author_kind,
        actor=author,
        patient_id=patient_id,
        target=category,
        source=source,
        item_id=item.id,
        **({"actor_name": author_name} if author_name else {}),
    )
    return item


async def profile_item(session: AsyncSession, patient_id: int, item_id: int) -> ProfileItem | None:
    """One item of this patient's profile (None when it is another patient's or absent)."""
    item = await session.get(ProfileItem, item_id)
    return item if item is not None and item.patient_id == patient_id else None


async def items_of_category(
    session: AsyncSession, patient_id: int, category: str
) -> list[ProfileItem]:
    """The items of one category, oldest first."""
    return list(
        (
            await session.scalars(
                select(ProfileItem)
                .where(ProfileItem.patient_id == patient_id, ProfileItem.category == category)
                .order_by(ProfileItem.id)
            )
        ).all()
    )


async def remove_item(
    session: AsyncSession, patient_id: int, item_id: int, *, author_kind: str, author: str
) -> bool:
    """Delete one item of this patient (False when it is not theirs)."""
    item = await session.get(ProfileItem, item_id)
    if item is None or item.patient_id != patient_id:
        return False
    await session.delete(item)
    record(
        session,
        "profile.item_removed",
        actor_kind=author_kind,
        actor=author,
        patient_id=patient_id,
        target=item.category,
        item_id=item_id,
    )
    return True


async def owner_of_item(session: AsyncSession, item_id: int) -> int | None:
    """The patient id an item belongs to (None when there is no such item)."""
    item = await session.get(ProfileItem, item_id)
    return item.patient_id if item is not None else None
