"""A guardian reaches the space of each minor they hold, and no other; acts name the minor."""

from __future__ import annotations

from html import unescape

from sqlalchemy import select

from mss.audit import AuditEvent
from mss.directory.models import Patient, PatientState
from tests.portal.conftest import Hub, add_guardianship, add_patient

PARENT, CHILD, OTHER_CHILD, STRANGER = (
    "201751234560554",
    "101751234560606",
    "101751234560705",
    "101751234560804",
)


async def _family(hub: Hub) -> tuple[Patient, Patient, Patient, Patient]:
    parent = await add_patient(hub.db, PARENT, "Leroy", "Sophie")
    child = await add_patient(hub.db, CHILD, "Leroy", "Léo", phone=None, password=False)
    other = await add_patient(hub.db, OTHER_CHILD, "Moreau", "Inès", phone=None, password=False)
    stranger = await add_patient(hub.db, STRANGER, "Moreau", "Jean")
    await add_guardianship(hub.db, parent, child)
    await add_guardianship(hub.db, stranger, other)
    return parent, child, other, stranger


async def _switch(hub: Hub, patient_id: int) -> int:
    response = await hub.post("/espace", {"patient": str(patient_id)}, csrf_from="/")
    return response.status


async def test_selector_lists_only_held_minors(hub: Hub) -> None:
    await _family(hub)
    await hub.login(PARENT)
    _response, html = await hub.page("/")
    assert "Espace affiché" in html and "Léo Leroy" in html and "Inès" not in html


async def test_switch_to_held_minor_and_act_there(hub: Hub) -> None:
    parent, child, _other, _stranger = await _family(hub)
    await hub.login(PARENT)
    assert await _switch(hub, child.id) == 303
    _response, html = await hub.page("/")
    assert "Vous agissez pour" in html and "Espace de Léo Leroy" in unescape(html)
    response = await hub.post("/compte/desactiver", {}, csrf_from="/compte/desactiver")
    assert response.status == 303
    async with hub.db.read() as session:
        assert (await session.get(Patient, child.id)).state is PatientState.DEACTIVATED  # type: ignore[union-attr]
        assert (await session.get(Patient, parent.id)).state is PatientState.ACTIVE  # type: ignore[union-attr]
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.patient_id == child.id).order_by(AuditEvent.id)
            )
        ).all()
    assert [(e.action, e.actor_kind, e.actor, e.on_behalf_of) for e in events] == [
        ("space_opened", "guardian", PARENT, CHILD),
        ("account_deactivated", "guardian", PARENT, CHILD),
    ]
    _response, html = await hub.page("/historique")
    assert "Compte désactivé" in unescape(html) and "Sophie Leroy (représentant légal)" in unescape(
        html
    )


async def test_no_switch_to_a_minor_not_held(hub: Hub) -> None:
    _parent, _child, other, stranger = await _family(hub)
    await hub.login(PARENT)
    for target in (other.id, stranger.id, 999999):
        assert await _switch(hub, target) == 403
    response = await hub.post("/espace", {"patient": "abc"}, csrf_from="/")
    assert response.status == 403
    _response, html = await hub.page("/historique")
    assert "Accès refusé à un autre espace" in unescape(
        html
    )  # the attempt is in the parent's own history
    async with hub.db.read() as session:
        leaked = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.patient_id.in_((other.id, stranger.id)))
            )
        ).all()
    assert [e.action for e in leaked if e.actor == PARENT] == []


async def test_guardianship_removed_falls_back_to_own_space(hub: Hub) -> None:
    _parent, child, _other, _stranger = await _family(hub)
    await hub.login(PARENT)
    await _switch(hub, child.id)
    async with hub.db.write() as session:
        from sqlalchemy import delete

        from mss.directory.models import Guardianship

        await session.execute(delete(Guardianship).where(Guardianship.minor_id == child.id))
    _response, html = await hub.page("/")
    assert "Bonjour Sophie" in html and "Vous agissez pour" not in html
    assert await _switch(hub, child.id) == 403


async def test_back_to_own_space(hub: Hub) -> None:
    parent, child, _other, _stranger = await _family(hub)
    await hub.login(PARENT)
    await _switch(hub, child.id)
    assert await _switch(hub, parent.id) == 303
    _response, html = await hub.page("/")
    assert "Bonjour Sophie" in html
