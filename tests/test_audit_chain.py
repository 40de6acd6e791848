"""The tamper-evident access history: events sealed into chains, and `mss audit verify` finding
the first
edited, deleted or reordered event, on both engines.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import delete, select, text, update

import mss.audit_verify
from dmp_bridge.access import release_withheld_events
from dmp_bridge.models import DmpDocument
from mss.audit import AuditChainHead, AuditEvent, record, recording_in_bulk
from mss.audit_verify import VerifyReport, verify_all
from mss.cli import main
from mss.db import Database
from tests.conftest import ENGINES
from tests.portal.conftest import add_patient

ALICE, BRUNO = "201751234561148", "101751234561297"
DOCTOR = "jean.dupont@mss.localhost"


async def verify_command(database_url: str, tmp_path: Path) -> Result:
    """`mss audit verify` as an operator runs it (its own event loop, in a thread)."""
    config = tmp_path / "mss.toml"
    config.write_text("", encoding="utf-8")
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke,
        main,
        ["--config", str(config), "--data-dir", str(tmp_path / "var"), "audit", "verify"],
        env={"MSS_DATABASE_URL": database_url},
    )


async def events_of(db: Database, chain: str) -> list[AuditEvent]:
    async with db.read() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
                )
            ).all()
        )


async def write_history(db: Database) -> tuple[int, int]:
    """Events by the ORM path and in bulk, about two patients and one professional; the patients'
    ids."""
    alice = await add_patient(db, ALICE, "Roux", "Alice")
    bruno = await add_patient(db, BRUNO, "Fabre", "Bruno", phone="+33600000002")
    for n in range(3):
        async with db.write() as session:
            record(
                session,
                "document_read",
                actor_kind="professional",
                actor=DOCTOR,
                patient_id=alice.id,
                source="10.0.0.1",
                actor_name="Dr Jean Dupont",
                n=n,
                tags=("a", "b"),
                counts={1: 2},
            )
    async with db.write() as session:
        async with recording_in_bulk(session):
            for n in range(4):
                record(
                    session,
                    "message.received",
                    actor_kind="professional",
                    actor=DOCTOR,
                    patient_id=alice.id if n % 2 else bruno.id,
                    target=f"m{n}",
                    stored_message_id=n,
                )
            record(
                session,
                "message.sent",
                actor_kind="professional",
                actor=DOCTOR,
                target="confrere@x",
            )
        record(
            session, "login", actor_kind="patient", actor=ALICE, patient_id=alice.id
        )  # ORM after bulk
    return alice.id, bruno.id


async def test_events_written_by_record_and_in_bulk_verify(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bruno = await write_history(db)
    chain = await events_of(db, f"patient:{alice}")
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5, 6]
    assert [e.action for e in chain] == ["document_read"] * 3 + ["message.received"] * 2 + ["login"]
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(chain))
    assert [e.seq for e in await events_of(db, f"patient:{bruno}")] == [1, 2]
    assert [e.seq for e in await events_of(db, f"actor:{DOCTOR}")] == [1]
    report = await verify_all(db)
    assert report.intact and (report.chains, report.events) == (3, 9)
    monkeypatch.setattr(
        mss.audit_verify, "PAGE", 2
    )  # read two events a statement: chains span pages
    report = await verify_all(db)
    assert report.intact and (report.chains, report.events) == (3, 9)
    result = await verify_command(database_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "checked 3 chains, 9 events: every chain is intact" in result.output


async def broken(db: Database, database_url: str, tmp_path: Path) -> tuple[VerifyReport, str]:
    report = await verify_all(db)
    result = await verify_command(database_url, tmp_path)
    assert result.exit_code == 1, result.output
    assert len(report.breaks) == 1, report.breaks
    return report, result.output


async def test_an_edited_field_is_reported_at_its_event(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    alice, _bruno = await write_history(db)
    third = (await events_of(db, f"patient:{alice}"))[2]
    async with db.write() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == third.id).values(source="192.0.2.9")
        )
    report, output = await broken(db, database_url, tmp_path)
    (found,) = report.breaks
    assert (found.chain, found.kind, found.event_id, found.seq) == (
        f"patient:{alice}",
        "edited",
        third.id,
        3,
    )
    assert found.at == third.at
    assert (
        f"patient:{alice}: edited: event {third.id} (n°3, {third.at:%Y-%m-%d %H:%M:%S} UTC)"
        in output
    )
    assert "a field was changed after it was written" in output
    assert "checked 3 chains, 9 events: 1 broken" in output


async def test_a_detail_edited_or_an_event_moved_to_another_patient(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    alice, bruno = await write_history(db)
    first, second = (await events_of(db, f"patient:{alice}"))[:2]
    async with db.write() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == second.id).values(patient_id=bruno)
        )
    report, output = await broken(db, database_url, tmp_path)
    assert (report.breaks[0].kind, report.breaks[0].event_id) == ("edited", second.id)
    assert f"now names patient {bruno}" in output
    async with db.write() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == second.id).values(patient_id=alice)
        )
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == first.id)
            .values(detail={**first.detail, "actor_name": "Quelqu'un d'autre"})
        )
    report, _output = await broken(db, database_url, tmp_path)
    assert (report.breaks[0].kind, report.breaks[0].event_id) == ("edited", first.id)


async def test_a_deleted_event_is_reported_at_the_gap(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    alice, _bruno = await write_history(db)
    chain = await events_of(db, f"patient:{alice}")
    async with db.write() as session:
        await session.execute(
            delete(AuditEvent).where(AuditEvent.id.in_([chain[2].id, chain[3].id]))
        )
    report, output = await broken(db, database_url, tmp_path)
    (found,) = report.breaks
    assert (found.kind, found.event_id, found.seq) == ("deleted", chain[4].id, 5)
    assert "the event(s) n°3 to n°4 before it were deleted" in output


async def test_deleted_last_events_are_reported_from_the_chain_head(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    alice, bruno = await write_history(db)
    chain = await events_of(db, f"patient:{alice}")
    async with db.write() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.id == chain[-1].id))
    report, output = await broken(db, database_url, tmp_path)
    (found,) = report.breaks
    assert (found.kind, found.event_id, found.seq) == ("deleted", chain[-2].id, 5)
    assert "the chain's last event(s) n°6 (after this one) were deleted" in output
    # A whole chain deleted, and a head deleted to hide it: both still show.
    async with db.write() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.chain == f"patient:{bruno}"))
        await session.execute(
            delete(AuditChainHead).where(AuditChainHead.chain == f"actor:{DOCTOR}")
        )
    report = await verify_all(db)
    assert {(b.chain, b.kind) for b in report.breaks} == {
        (f"patient:{alice}", "deleted"),
        (f"patient:{bruno}", "deleted"),
        (f"actor:{DOCTOR}", "deleted"),
    }
    assert "every event of the chain" in next(
        b.sentence for b in report.breaks if b.chain == f"patient:{bruno}"
    )
    assert "head is missing" in next(
        b.sentence for b in report.breaks if b.chain == f"actor:{DOCTOR}"
    )


async def test_reordered_events_are_reported_where_the_order_breaks(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    alice, _bruno = await write_history(db)
    chain = await events_of(db, f"patient:{alice}")
    second, third = chain[1], chain[2]
    async with (
        db.write() as session
    ):  # the third event moved before the second (through a free number)
        await session.execute(update(AuditEvent).where(AuditEvent.id == second.id).values(seq=-1))
        await session.execute(update(AuditEvent).where(AuditEvent.id == third.id).values(seq=2))
        await session.execute(update(AuditEvent).where(AuditEvent.id == second.id).values(seq=3))
    report, output = await broken(db, database_url, tmp_path)
    (found,) = report.breaks
    assert (found.kind, found.event_id, found.seq) == ("reordered", third.id, 2)
    assert "it was sealed as event n°3 of its chain and now sits at n°2" in output


async def test_swapped_contents_and_times_are_reported(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    alice, _bruno = await write_history(db)
    chain = await events_of(db, f"patient:{alice}")
    first, fourth = chain[0], chain[3]
    async with db.write() as session:  # the dates swapped, so the page lists them in another order
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == first.id).values(at=fourth.at)
        )
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == fourth.id).values(at=first.at)
        )
    report, _output = await broken(db, database_url, tmp_path)
    assert (report.breaks[0].kind, report.breaks[0].event_id) == ("edited", first.id)


async def test_a_resealed_row_out_of_place_is_reordered(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """Rows 2 and 3 swapped with all their columns but the numbers: each self-consistent, out of
    place."""
    alice, _bruno = await write_history(db)
    chain = await events_of(db, f"patient:{alice}")
    second, third = chain[1], chain[2]
    columns = (
        "at",
        "action",
        "actor_kind",
        "actor",
        "on_behalf_of",
        "target",
        "source",
        "detail",
        "prev_hash",
        "hash",
    )
    async with db.write() as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == second.id)
            .values({c: getattr(third, c) for c in columns})
        )
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == third.id)
            .values({c: getattr(second, c) for c in columns})
        )
    report, _output = await broken(db, database_url, tmp_path)
    (found,) = report.breaks
    assert (found.kind, found.event_id, found.seq) == ("reordered", second.id, 2)


async def test_a_withheld_event_revealed_to_its_patient_still_verifies(db: Database) -> None:
    alice = await add_patient(db, ALICE, "Roux", "Alice")
    async with db.write() as session:
        record(
            session,
            "document_read",
            actor_kind="professional",
            actor=DOCTOR,
            target="dmp-document:77",
            withheld_from_patient=alice.id,
            document_id=77,
        )
        record(
            session, "document_read", actor_kind="professional", actor=DOCTOR, patient_id=alice.id
        )
    assert [e.patient_id for e in await events_of(db, f"patient:{alice.id}")] == [None, alice.id]
    async with db.write() as session:
        await release_withheld_events(
            session, alice, DmpDocument(id=77, invisible_to_legal_representatives=False)
        )
    assert [e.patient_id for e in await events_of(db, f"patient:{alice.id}")] == [
        alice.id,
        alice.id,
    ]
    assert (await verify_all(db)).intact


async def test_concurrent_appends_to_one_chain_take_distinct_numbers(
    db: Database, database_url: str
) -> None:
    """Writers in two engines (two processes, as SMTP and the job process are) append to one chain
    at once."""
    alice = await add_patient(db, ALICE, "Roux", "Alice")
    other = Database(database_url)
    try:

        async def append(database: Database, n: int) -> None:
            async with database.write() as session:
                if n % 3 == 0:
                    async with recording_in_bulk(session):
                        record(
                            session,
                            "message.received",
                            actor_kind="system",
                            actor="mss",
                            patient_id=alice.id,
                        )
                        record(
                            session,
                            "message.received",
                            actor_kind="system",
                            actor="mss",
                            patient_id=alice.id,
                        )
                else:
                    record(
                        session,
                        "document_read",
                        actor_kind="professional",
                        actor=DOCTOR,
                        patient_id=alice.id,
                        n=n,
                    )

        await asyncio.gather(*(append(db if n % 2 else other, n) for n in range(30)))
    finally:
        await other.dispose()
    chain = await events_of(db, f"patient:{alice.id}")
    assert [e.seq for e in chain] == list(range(1, 41))
    report = await verify_all(db)
    assert report.intact and report.events == 40


@pytest.mark.skipif("postgresql" not in ENGINES, reason="PostgreSQL is not among MSS_TEST_ENGINES")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_second_writer_waits_for_the_chain_head_on_postgresql(db: Database) -> None:
    """The first writer holds its chain's head until it commits; the second then takes the next
    number."""
    alice = await add_patient(db, ALICE, "Roux", "Alice")
    first_flushed = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with db.write() as session:
            record(
                session,
                "document_read",
                actor_kind="professional",
                actor=DOCTOR,
                patient_id=alice.id,
            )
            await session.flush()
            first_flushed.set()
            await release_first.wait()

    async def second() -> None:
        await first_flushed.wait()
        async with db.write() as session:
            record(session, "login", actor_kind="patient", actor=ALICE, patient_id=alice.id)

    writers = [asyncio.ensure_future(first()), asyncio.ensure_future(second())]
    await first_flushed.wait()
    async with db.read() as session:  # wait until the second writer is blocked on the head's lock
        while not (
            await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO audit_chain_heads%'"
                )
            )
        ).scalar():
            await session.rollback()
            await asyncio.sleep(0.01)
    release_first.set()
    await asyncio.gather(*writers)
    chain = await events_of(db, f"patient:{alice.id}")
    assert [(e.seq, e.action) for e in chain] == [(1, "document_read"), (2, "login")]
    assert (await verify_all(db)).intact
