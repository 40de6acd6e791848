"""Group commit: deliveries ready together share one transaction, each still gets its own answer.

Several deliveries handed over in the same instant are written by one
transaction; one refused inside a batch does not fail the others; a
failing write is isolated the same way; and the answer (the 250 over SMTP)
comes only once the data is committed, as a second connection sees it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import Database
from mss.directory.facts import mailbox_facts
from mss.group_commit import GroupCommit, group_commit
from mss.jobs import Job, enqueue
from mss.mailbox.models import Folder
from mss.message import parse_message
from mss.policy import RecipientFacts
from mss.smtp_gateway.content import SignatureOutcome
from mss.smtp_gateway.delivery import (
    DeliveryReceipt,
    DeliveryRefused,
    DeliveryRequest,
    deliver,
    prepare,
    write_deliveries,
)
from mss.smtp_gateway.envelope import Sender, Transaction
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PATIENT, Hub, message


async def _request(hub: Hub, sender: str, recipient: str, subject: str) -> DeliveryRequest:
    async with hub.db.read() as session:
        sender_facts = await mailbox_facts(session, sender)
        recipient_facts = await mailbox_facts(session, recipient)
    txn = Transaction(
        Sender(sender, sender_facts, channel="submission"),
        [RecipientFacts(recipient, True, recipient_facts)],
    )
    return prepare(
        hub.settings,
        txn,
        parse_message(message(sender, recipient, subject=subject)),
        SignatureOutcome("none"),
    )


async def _subjects(db: Database, address: str) -> list[str]:
    """Subjects in the INBOX of ``address`` read through a connection of another engine."""
    other = Database(db.url)
    try:
        async with other.read() as session:
            rows = await session.execute(
                text(
                    "SELECT m.subject FROM messages m JOIN folder_entries e ON e.message_id = m.id "
                    "JOIN folders f ON f.id = e.folder_id JOIN mailboxes b ON b.id = f.mailbox_id "
                    "WHERE b.address = :address AND f.name = 'INBOX' ORDER BY e.uid"
                ),
                {"address": address},
            )
            return [row[0] for row in rows]
    finally:
        await other.dispose()


async def test_deliveries_handed_over_together_share_one_transaction(hub: Hub) -> None:
    requests = [await _request(hub, DOCTOR, OTHER_DOCTOR, f"lot {n}") for n in range(6)]
    writer = group_commit(hub.db, "smtp.delivery", write_deliveries)
    before = writer.stats.batches
    receipts = await asyncio.gather(*(deliver(hub.db, r) for r in requests))
    assert writer.stats.batches == before + 1
    assert [r.delivered_to for r in receipts] == [[OTHER_DOCTOR]] * 6
    assert len({r.queue_id for r in receipts}) == 6
    assert await _subjects(hub.db, OTHER_DOCTOR) == [f"lot {n}" for n in range(6)]
    async with hub.db.read() as session:
        sent = (
            await session.scalars(
                select(Folder).where(Folder.mailbox_id == hub.ids[DOCTOR], Folder.name == "Sent")
            )
        ).one()
        inbox = (
            await session.scalars(
                select(Folder).where(
                    Folder.mailbox_id == hub.ids[OTHER_DOCTOR], Folder.name == "INBOX"
                )
            )
        ).one()
    assert (sent.uidnext, inbox.uidnext) == (7, 7)  # UIDs 1..6 in both folders, none shared


async def test_a_refused_delivery_inside_a_batch_does_not_fail_the_others(hub: Hub) -> None:
    good = [await _request(hub, DOCTOR, PATIENT, f"résultat {n}") for n in range(4)]
    # A patient may not open a conversation with a professional: refused inside the transaction.
    refused = await _request(hub, PATIENT, OTHER_DOCTOR, "nouvelle demande")
    writer = group_commit(hub.db, "smtp.delivery", write_deliveries)
    retried = writer.stats.retried_alone
    batch = [*good[:2], refused, *good[2:]]
    outcomes = await asyncio.gather(*(deliver(hub.db, r) for r in batch), return_exceptions=True)
    assert writer.stats.retried_alone > retried
    assert isinstance(outcomes[2], DeliveryRefused)
    assert outcomes[2].decision.smtp_code == 550
    delivered = [o for i, o in enumerate(outcomes) if i != 2]
    assert all(isinstance(o, DeliveryReceipt) and o.delivered_to == [PATIENT] for o in delivered)
    assert await _subjects(hub.db, PATIENT) == [f"résultat {n}" for n in range(4)]
    assert await _subjects(hub.db, OTHER_DOCTOR) == []


async def test_a_failing_write_inside_a_batch_is_isolated(db: Database) -> None:
    """A unique-key violation fails only its own request; the others commit, each answered."""

    async def write(session: AsyncSession, keys: Sequence[str]) -> list[str]:
        for key in keys:
            enqueue(session, "test.batch", {"key": key}, dedupe_key=key)
        await session.flush()
        return list(keys)

    writer: GroupCommit[str, str] = GroupCommit(db, write)
    assert await writer.submit("taken", 10) == "taken"
    outcomes = await asyncio.gather(
        *(writer.submit(k, 10) for k in ["a", "taken", "b", "c"]), return_exceptions=True
    )
    assert outcomes[0] == "a" and outcomes[2:] == ["b", "c"]
    assert isinstance(outcomes[1], IntegrityError)
    async with db.read() as session:
        keys = (await session.scalars(select(Job.dedupe_key).order_by(Job.id))).all()
    assert keys == ["taken", "a", "b", "c"]


async def test_the_250_comes_only_after_the_commit(hub: Hub) -> None:
    """While another connection holds the write lock, the client waits and nothing is visible."""
    client = await hub.login_client()
    await client.sendmail(DOCTOR, [OTHER_DOCTOR], message(DOCTOR, OTHER_DOCTOR, subject="avant"))
    release = await _hold_write_lock(hub)
    try:
        sending = asyncio.create_task(
            client.sendmail(
                DOCTOR, [OTHER_DOCTOR], message(DOCTOR, OTHER_DOCTOR, subject="pendant")
            )
        )
        done, _ = await asyncio.wait({sending}, timeout=1.0)
        assert not done, "the client got its answer while the transaction could not commit"
        assert await _subjects(hub.db, OTHER_DOCTOR) == ["avant"]
    finally:
        await release()
    errors, reply = await sending
    assert not errors and reply.startswith("2.0.0")
    assert await _subjects(hub.db, OTHER_DOCTOR) == ["avant", "pendant"]
    await client.quit()


async def _hold_write_lock(hub: Hub) -> Callable[[], Awaitable[None]]:
    """Block writes from another connection: SQLite's write lock, or the INBOX row on PostgreSQL."""
    if hub.db.is_sqlite:
        lock = sqlite3.connect(make_url(hub.db.url).database, timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")

        async def release_sqlite() -> None:
            lock.execute("ROLLBACK")
            lock.close()

        return release_sqlite
    other = Database(hub.db.url)
    session = other.sessions()
    await session.begin()
    await session.execute(
        select(Folder.id)
        .where(Folder.mailbox_id == hub.ids[OTHER_DOCTOR], Folder.name == "INBOX")
        .with_for_update()
    )

    async def release_postgres() -> None:
        await session.rollback()
        await session.close()
        await other.dispose()

    return release_postgres
