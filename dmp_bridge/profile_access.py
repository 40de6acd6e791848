"""A professional's reads and writes of the patient's medical profile, consent-checked and audited.

The decision is ``mss.policy.medical_profile`` (the DMP's reading rule; writing for the médecin
traitant and authorised professionals only); the items are ``mss.profile``'s, reached through its
store. A refusal is an audit event (``profile_access_refused``) and raises ``DmpRefused``; a read
allowed through break-glass is logged and notified exactly as a document read is
(``dmp_bridge.emergency``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused, Viewer, audit
from dmp_bridge.consent_store import consent_facts
from dmp_bridge.emergency import record_emergency_access
from mss.directory.models import Patient
from mss.policy.consent import NOT_FOUND
from mss.policy.decision import Decision
from mss.policy.medical_profile import ProfileAction, decide_profile_action
from mss.profile import store
from mss.profile.models import ProfileItem


async def _decide(
    session: AsyncSession, viewer: Viewer, patient: Patient, action: ProfileAction, category: str
) -> Decision:
    facts = await viewer.facts(session, patient)
    consent = await consent_facts(session, patient)
    decision = decide_profile_action(facts, consent, action, category)
    if not decision.allowed:
        await audit(
            session,
            "profile_access_refused",
            viewer,
            patient,
            attempted=action.value,
            category=category,
            refusal=decision.reason,
        )
        raise DmpRefused(decision)
    if decision.break_glass:
        await record_emergency_access(session, viewer, patient)
    return decision


async def read_profile_items(
    session: AsyncSession, viewer: Viewer, patient: Patient, category: str
) -> list[ProfileItem]:
    """The profile's items of ``category`` (allergy, treatment), oldest first."""
    await _decide(session, viewer, patient, ProfileAction.READ, category)
    items = await store.items_of_category(session, patient.id, category)
    await audit(
        session,
        "profile_read",
        viewer,
        patient,
        category=category,
        count=len(items),
        reason=viewer.break_glass_reason or None,
    )
    return items


async def read_profile_item(
    session: AsyncSession, viewer: Viewer, patient: Patient, item_id: int, category: str
) -> ProfileItem:
    """One item; 404 when it is absent or of another category."""
    await _decide(session, viewer, patient, ProfileAction.READ, category)
    item = await store.profile_item(session, patient.id, item_id)
    if item is None or item.category != category:
        raise DmpRefused(NOT_FOUND)
    await audit(
        session,
        "profile_item_read",
        viewer,
        patient,
        category=category,
        item_id=item.id,
        reason=viewer.break_glass_reason or None,
    )
    return item


async def record_profile_item(
    session: AsyncSession,
    viewer: Viewer,
    patient: Patient,
    *,
    category: str,
    label: str,
    detail: str,
    when: str,
    code: str,
    code_system: str,
    now: dt.datetime,
) -> ProfileItem:
    """A professional records an allergy or a treatment, named as its author (idNat, name)."""
    await _decide(session, viewer, patient, ProfileAction.WRITE, category)
    return await store.add_item(
        session,
        patient.id,
        category=category,
        label=label,
        detail=detail,
        when=when,
        author_kind=viewer.actor_kind,
        author=viewer.actor,
        author_name=viewer.name,
        code=code,
        code_system=code_system,
        source=viewer.source,
        now=now,
    )
