"""RCPT facts remembered for a moment (``mss.directory.facts.RecipientFactsCache``): a second
RCPT to one address reads nothing, a directory write in this process is seen at once, one from
another process within ``[limits] recipient_cache_seconds``, and delivery's own reading keeps a
stale entry from ever delivering where the directory says no (a bounce instead)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, update

from mss.db import Database
from mss.directory.facts import mailbox_facts, recipient_cache
from mss.directory.models import Mailbox, MailboxState, Patient, PatientState
from mss.smtp_gateway import Gateway
from mss.smtp_gateway.dsn import as_email
from mss.smtp_gateway.envelope import Sender, Transaction
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PATIENT, Hub, WireClient, message, signed


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _rcpt(client: WireClient, address: str) -> int:
    return (await client.command(f"RCPT TO:<{address}>".encode()))[0]


async def test_a_second_rcpt_to_an_address_reads_nothing(hub: Hub) -> None:
    """Even after a delivery in between: writes to other tables keep the cache."""
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert await _rcpt(client, OTHER_DOCTOR) == 250
    assert (await client.command(b"DATA"))[0] == 354
    client.send(message(DOCTOR, OTHER_DOCTOR) + b".\r\n")
    assert (await client.reply())[0] == 250
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    with statements(hub.db) as seen:
        assert await _rcpt(client, OTHER_DOCTOR.upper()) == 250  # the same address, any case
    await client.close()
    assert [s for s in seen if "mailboxes" in s] == []


async def test_unknown_addresses_are_not_remembered(hub: Hub) -> None:
    new = "nouveau.medecin@mss.localhost"
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert await _rcpt(client, new) == 550
    async with hub.db.write() as session:
        session.add(Mailbox(address=new, kind="PER"))
    assert await _rcpt(client, new) == 250  # created a moment ago: reachable at once
    await client.close()


async def test_a_directory_write_in_this_process_is_seen_at_the_next_rcpt(hub: Hub) -> None:
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert await _rcpt(client, OTHER_DOCTOR) == 250
    assert len(recipient_cache(hub.db, hub.settings.limits.recipient_cache_seconds)) >= 1
    async with hub.db.write() as session:
        await session.execute(
            update(Mailbox).where(Mailbox.address == OTHER_DOCTOR).values(state=MailboxState.CLOSED)
        )
    code, text = await client.command(f"RCPT TO:<{OTHER_DOCTOR}>".encode())
    await client.close()
    assert code == 550 and "is closed" in text


async def test_a_write_from_another_process_is_at_worst_a_bounce_then_seen(hub: Hub) -> None:
    """Another process's write (here: another engine on the same database, as the CLI or a
    second SMTP process) does not reach this cache: the RCPT still says 250 within the lifetime,
    but delivery reads the patient's state again and bounces; after the lifetime RCPT refuses."""
    hub.settings.limits.recipient_cache_seconds = 0.5
    recipient_cache(hub.db, 0.5).clear()
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, [PATIENT], subject="Résultats")
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert await _rcpt(client, PATIENT) == 250
    assert (await client.command(b"RSET"))[0] == 250
    other = Database(hub.db.url)
    try:
        async with other.write() as session:
            await session.execute(
                update(Patient)
                .where(Patient.ins == PATIENT.split("@")[0])
                .values(state=PatientState.CLOSED)
            )
    finally:
        await other.dispose()
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert await _rcpt(client, PATIENT) == 250  # remembered: the other process wrote
    assert (await client.command(b"DATA"))[0] == 354
    client.send(raw + b".\r\n")
    assert (await client.reply())[0] == 250
    assert await hub.stored(PATIENT) == []  # delivery read the closed account: not delivered
    await hub.runner.drain()
    bounce = as_email((await hub.stored(DOCTOR))[0].raw)
    assert "est clôturé (5.2.1)" in bounce.get_body(("plain",)).get_content()
    await asyncio.sleep(0.6)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    code, text = await client.command(f"RCPT TO:<{PATIENT}>".encode())
    await client.close()
    assert code == 550 and "5.2.1" in text


async def test_patients_rcpts_are_never_taken_from_the_cache(hub: Hub) -> None:
    """A patient's RCPT (the portal's path) depends on the conversations they may answer: the
    directory is read each time, even for an address another sender's RCPT just cached."""
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert await _rcpt(client, OTHER_DOCTOR) == 250
    await client.close()
    gateway = Gateway(hub.settings, hub.db, hub.services)
    async with hub.db.read() as session:
        patient = await mailbox_facts(session, PATIENT)
    assert patient is not None
    txn = Transaction(Sender(PATIENT, patient, channel="portal"))
    with statements(hub.db) as seen:
        decision, _facts = await gateway.check_recipient(txn, OTHER_DOCTOR)
    assert any("mailboxes" in s for s in seen)
    assert not decision.allowed  # no conversation opened by that professional
