"""The access history shows the current space's events only, filterable by kind and day."""

from __future__ import annotations

import datetime as dt
from html import unescape

import pytest
from sqlalchemy import delete, select, update

import portal.history
from mss.audit import AuditEvent, record
from mss.audit_verify import RecentlyVerified
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient, second_visitor
from tests.portal.messaging import DOCTOR, patient_address, setup_mail

ALICE, BRUNO = "201751234561148", "101751234561297"


async def test_each_patient_sees_only_their_history(hub: Hub) -> None:
    alice = await add_patient(hub.db, ALICE, "Roux", "Alice", phone="+33600000001")
    bruno = await add_patient(hub.db, BRUNO, "Fabre", "Bruno", phone="+33600000002")
    async with hub.db.write() as session:
        record(
            session,
            "document_read",
            actor_kind="professional",
            actor="8100000000001",
            patient_id=bruno.id,
            source="10.1.2.3",
            actor_name="Dr Anne Secret",
        )
    other = await second_visitor(hub)
    try:
        await other.login(BRUNO)
        await hub.login(ALICE)
        for path in (
            "/historique",
            f"/historique?patient={bruno.id}",
            f"/historique?patient_id={bruno.id}",
        ):
            response, html = await hub.page(path)
            assert response.status == 200
            assert "Dr Anne Secret" not in html and "Bruno" not in html
            assert "Alice Roux (vous-même)" in unescape(html)
        _response, html = await other.page("/historique")
        assert "Dr Anne Secret (professionnel de santé)" in unescape(html) and "10.1.2.3" in html
        assert alice.id != bruno.id
    finally:
        await other.client.close()


async def test_filter_by_kind_and_dates(hub: Hub) -> None:
    alice = await add_patient(hub.db, ALICE, "Roux", "Alice")
    async with hub.db.write() as session:
        for action, day in (
            ("message_read", 3),
            ("consent_changed", 10),
            ("document_read", 20),
            ("account_deactivated", 25),
        ):
            event = record(
                session,
                action,
                actor_kind="patient",
                actor=ALICE,
                patient_id=alice.id,
                actor_name="Alice Roux",
            )
            event.at = dt.datetime(2026, 3, day, 12, 0, tzinfo=dt.UTC)
    await hub.login(ALICE)

    async def shown(query: str) -> set[str]:
        _response, html = await hub.page("/historique" + query)
        labels = {
            "Message lu",
            "Consentement modifié",
            "Document consulté",
            "Compte désactivé",
            "Connexion",
        }
        return {label for label in labels if f'<p class="what">{label}' in unescape(html)}

    assert await shown("") == {
        "Message lu",
        "Consentement modifié",
        "Document consulté",
        "Compte désactivé",
        "Connexion",
    }
    assert await shown("?type=messages") == {"Message lu"}
    assert await shown("?type=consentements") == {"Consentement modifié"}
    assert await shown("?type=acces") == {"Document consulté"}
    assert await shown("?type=connexions") == {"Connexion"}
    assert await shown("?type=compte") == {"Compte désactivé"}
    assert await shown("?du=2026-03-05&au=2026-03-20") == {
        "Consentement modifié",
        "Document consulté",
    }
    assert await shown("?type=acces&du=2026-03-21") == set()
    _response, html = await hub.page("/historique?du=pas-une-date")
    assert "pas été comprise" in html


SEALED = "Cet historique n'a pas été modifié : chaque ligne est scellée à la précédente."
ALTERED = "Attention : cet historique a été modifié après son écriture"


async def test_the_page_says_whether_the_history_was_altered(hub: Hub, dev_pki: DevPki) -> None:
    alice = await add_patient(hub.db, ALICE, "Roux", "Alice")
    mail = await setup_mail(hub, dev_pki)
    await mail.send(
        DOCTOR, patient_address(ALICE), "Résultats"
    )  # delivery's group commit: sealed in bulk
    async with hub.db.write() as session:
        record(
            session,
            "document_read",
            actor_kind="professional",
            actor="8100000000001",
            target="dmp-document:9",
            withheld_from_patient=alice.id,
            actor_name="Dr Anne Secret",
        )
    await hub.login(ALICE)
    _response, html = await hub.page("/historique")
    assert SEALED in unescape(html) and ALTERED not in unescape(html)
    assert "Message reçu" in html and "Dr Anne Secret" not in html
    async with hub.db.read() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.chain == f"patient:{alice.id}")
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [e.action for e in events][:2] == ["message.received", "document_read"]
    async with (
        hub.db.write() as session
    ):  # the hidden event's author rewritten: checked though never shown
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == events[1].id).values(actor="8100000000002")
        )
    _response, html = await hub.page("/historique")
    assert ALTERED in unescape(html) and SEALED not in unescape(html)
    assert "Dr Anne Secret" not in html and "8100000000002" not in html
    async with hub.db.write() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == events[1].id).values(actor="8100000000001")
        )
    _response, html = await hub.page("/historique")
    assert SEALED in unescape(html)
    async with hub.db.write() as session:  # the delivery's line deleted
        await session.execute(delete(AuditEvent).where(AuditEvent.id == events[0].id))
    _response, html = await hub.page("/historique")
    assert ALTERED in unescape(html) and "Message reçu" not in html


async def test_a_long_history_is_walked_whole_every_ten_minutes(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past full_walk_events, the page checks new events at once and the whole chain again 10
    minutes later."""
    monkeypatch.setattr(portal.history, "VERIFIED", RecentlyVerified(full_walk_events=3))
    alice = await add_patient(hub.db, ALICE, "Roux", "Alice")

    async def read_by_doctor(n: int) -> None:
        async with hub.db.write() as session:
            record(
                session,
                "document_read",
                actor_kind="professional",
                actor="8100000000001",
                patient_id=alice.id,
                actor_name="Dr Anne Martin",
                n=n,
            )

    for n in range(4):
        await read_by_doctor(n)
    await hub.login(ALICE)
    _response, html = await hub.page("/historique")  # walked whole, remembered
    assert SEALED in unescape(html)
    await read_by_doctor(4)
    async with (
        hub.db.write() as session
    ):  # a new event edited before the page is seen: its check fails
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == f"patient:{alice.id}", AuditEvent.seq == 6)
            .values(source="192.0.2.1")
        )
    _response, html = await hub.page("/historique")
    assert ALTERED in unescape(html)
    async with hub.db.write() as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == f"patient:{alice.id}", AuditEvent.seq == 6)
            .values(source="")
        )
    _response, html = await hub.page("/historique")
    assert SEALED in unescape(html)
    async with hub.db.write() as session:  # an old event edited: seen at the next whole walk
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == f"patient:{alice.id}", AuditEvent.seq == 1)
            .values(source="192.0.2.1")
        )
    _response, html = await hub.page("/historique")
    assert SEALED in unescape(html)  # only the new events were read: the page stays cheap
    hub.clock.advance(minutes=10)
    _response, html = await hub.page("/historique")
    assert ALTERED in unescape(html)
