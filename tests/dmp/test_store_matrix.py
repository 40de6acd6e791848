"""The role x action table through the document store (what the portal and the API call), both
engines."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dmp_bridge.access import DmpRefused
from dmp_bridge.consent_store import set_break_glass_opposition
from dmp_bridge.documents import (
    DocumentDraft,
    deposit_document,
    get_document,
    list_documents_for,
    mask_document,
)
from mss.audit import AuditEvent
from tests.dmp.conftest import World
from tests.dmp.matrix import (
    DEPOSIT,
    DOCUMENTS,
    LIST_REFUSED,
    MASK,
    REASON,
    REPLACE,
    ROLES,
    VISIBLE,
    read_status,
)


async def _status(world: World, role: str, work) -> int:  # type: ignore[no-untyped-def]
    """Run ``work(session, viewer, patient)`` in a transaction; 200, or the refusal's status."""
    reason = REASON if role.startswith("break_glass") else None
    async with world.db.write() as session:
        patient = await world.fresh_patient()
        patient = await session.merge(patient)
        if role == "break_glass_opposed":
            await set_break_glass_opposition(session, world.viewer("patient"), patient, True)
        try:
            await work(session, world.viewer(role, reason), patient)
        except DmpRefused as refused:
            return refused.decision.status
    return 200


@pytest.mark.parametrize("role", ROLES)
async def test_role_matrix_through_the_store(world: World, role: str) -> None:
    listed: list[str] = []

    async def do_list(session, viewer, patient):  # type: ignore[no-untyped-def]
        found = await list_documents_for(session, viewer, patient)
        names = {v: k for k, v in world.documents.items()}
        listed.extend(names[d.id] for d in found)

    assert await _status(world, role, do_list) == LIST_REFUSED.get(role, 200)
    assert set(listed) == (VISIBLE[role] or set())

    for name in DOCUMENTS:
        read: list[bytes] = []

        async def do_read(session, viewer, patient, name=name, read=read):  # type: ignore[no-untyped-def]
            _document, data = await get_document(session, viewer, patient, world.documents[name])
            read.append(data)

        assert await _status(world, role, do_read) == read_status(role, name), (role, name)
        assert bool(read) == (read_status(role, name) == 200)

    async def do_deposit(session, viewer, patient):  # type: ignore[no-untyped-def]
        await deposit_document(
            session,
            viewer,
            patient,
            DocumentDraft(
                content=b"%PDF-1.4 note",
                mime_type="application/pdf",
                title=f"Note de {role}",
                author_id_nat=viewer.id_nat,
            ),
        )

    assert await _status(world, role, do_deposit) == DEPOSIT[role]

    async def do_mask(session, viewer, patient):  # type: ignore[no-untyped-def]
        await mask_document(session, viewer, patient, world.documents["plain"])
        await mask_document(session, viewer, patient, world.documents["plain"], masked=False)

    assert await _status(world, role, do_mask) == MASK[role]

    async def do_replace(session, viewer, patient):  # type: ignore[no-untyped-def]
        await deposit_document(
            session,
            viewer,
            patient,
            DocumentDraft(content=b"v2", mime_type="text/plain", title="v2"),
            replaces_id=world.documents["plain"],
        )

    assert await _status(world, role, do_replace) == REPLACE[role]


async def test_refusals_are_audited_without_naming_the_document(world: World) -> None:
    async def do_read(session, viewer, patient):  # type: ignore[no-untyped-def]
        await get_document(session, viewer, patient, world.documents["masked"])

    assert await _status(world, "authorised", do_read) == 404
    async with world.db.read() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "document_access_refused")
            )
        ).all()
    assert [(e.patient_id, e.target, e.detail["refusal"]) for e in events] == [
        (world.patient.id, "", "not_found")
    ]
    assert "masked" not in str(events[0].detail)
