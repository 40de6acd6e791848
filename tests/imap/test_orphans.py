"""Expunged messages leave the store once nothing refers to them, and never break a reference."""

from __future__ import annotations

from sqlalchemy import select

from dmp_bridge.models import DmpDocument
from mss.conversations import open_conversation
from mss.db import Database
from mss.directory.models import MailboxKind, Patient
from mss.jobs import enqueue
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import deliver
from tests.imap.conftest import Wire, make_mailbox
from tests.imap.test_transcript_basic import MESSAGE


async def _stored_ids(db: Database) -> set[int]:
    async with db.read() as session:
        return set((await session.scalars(select(StoredMessage.id))).all())


async def test_last_expunge_deletes_the_message(db: Database, mailbox_id: int, wire: Wire) -> None:
    async with db.write() as session:
        entry = await deliver(session, mailbox_id, MESSAGE)
        kept = await deliver(session, mailbox_id, MESSAGE)
    message_id = entry.message_id
    await wire.login()
    await wire.command("s SELECT INBOX")
    await wire.check("a1 COPY 1 Archive", "a1 OK [COPYUID {*} 1 1] COPY completed")
    await wire.check("a2 STORE 1 +FLAGS.SILENT (\\Deleted)", "a2 OK STORE completed")
    await wire.check("a3 EXPUNGE", "* 1 EXPUNGE\na3 OK EXPUNGE completed")
    assert message_id in await _stored_ids(db)  # Archive still holds it
    await wire.command("s2 SELECT Archive")
    await wire.check(
        "a4 UID MOVE 1 Trash", "* OK [COPYUID {*} 1 1] Moved\n* 1 EXPUNGE\na4 OK UID MOVE completed"
    )
    await wire.check("a5 SELECT Trash", "{*}a5 OK [READ-WRITE] SELECT completed")
    assert message_id in await _stored_ids(db)  # moved, not gone
    await wire.check("a6 STORE 1 +FLAGS.SILENT (\\Deleted)", "a6 OK STORE completed")
    await wire.check("a7 CLOSE", "a7 OK CLOSE completed")
    assert await _stored_ids(db) == {kept.message_id}


async def test_deleting_a_folder_deletes_its_messages(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await wire.login()
    await wire.command("c CREATE Patients")
    await wire.command("a APPEND Patients {12+}\r\nSubject: x\r\n\r\n")
    assert len(await _stored_ids(db)) == 1
    await wire.check("d DELETE Patients", "d OK DELETE completed")
    assert await _stored_ids(db) == set()


async def test_referenced_messages_are_kept(db: Database, mailbox_id: int, wire: Wire) -> None:
    patient_box = await make_mailbox(db, "198017512345678@patient.mss.localhost", MailboxKind.PAT)
    async with db.write() as session:
        in_conversation = await deliver(session, mailbox_id, MESSAGE)
        conversation = await open_conversation(session, patient_box, mailbox_id)
        stored = await session.get(StoredMessage, in_conversation.message_id)
        assert stored is not None
        stored.conversation_id = conversation.id
        for_relay = await deliver(session, mailbox_id, MESSAGE)
        enqueue(session, "smtp.relay", {"message_id": for_relay.message_id})
        filed = await deliver(session, mailbox_id, MESSAGE)
        patient = Patient(ins="198017512345678", family_name="MARTIN", given_names="Paul")
        session.add(patient)
        await session.flush()
        session.add(
            DmpDocument(
                patient_id=patient.id,
                unique_id="1.2.3",
                stored_message_id=filed.message_id,
                content=b"<ClinicalDocument/>",
            )
        )
        gone = await deliver(session, mailbox_id, MESSAGE)
    before = await _stored_ids(db)
    await wire.login()
    await wire.command("s SELECT INBOX")
    await wire.check("a1 STORE 1:* +FLAGS.SILENT (\\Deleted)", "a1 OK STORE completed")
    await wire.check(
        "a2 EXPUNGE", "* 1 EXPUNGE\n* 1 EXPUNGE\n* 1 EXPUNGE\n* 1 EXPUNGE\na2 OK EXPUNGE completed"
    )
    assert await _stored_ids(db) == before - {gone.message_id}
