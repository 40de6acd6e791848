"""How many SQL statements the busiest pages run: a regression guard, counted, never timed.

The inbox and a message page read what they show in a fixed number of statements
whatever the number of messages and correspondents (directory look-ups batched,
the entry read with its folder, message and conversation); reading a message
already \\Seen writes its audit line and nothing else; the session's last-seen
time is written at most every 30 seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from mss.audit import AuditEvent
from mss.conversations import close_conversation
from mss.directory.store import find_mailbox
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import deliver
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, OTHER_DOCTOR, PHARMACY, Mail, patient_address, setup_mail

INS = "201751234561148"
PATIENT = patient_address(INS)

INBOX_BUDGET = 4  # session (with person, minors, and the space's mailbox with its stamp),
#                   lines, conversations, directory
INBOX_KEPT_BUDGET = 1  # unchanged since the last reading: the session statement alone
UNKNOWN_SENDER_EXTRA = 1  # a sender the directory does not know is looked up again in lower case
MESSAGE_BUDGET = 6  # session, entry (with mailbox, folder, message, conversation), the reply
#                     decision's conversation facts (1), the audit line and its seal (its chain's
#                     head taken, then moved on: mss.audit_chain); the directory's description of
#                     the correspondents is kept by message (portal.context.Correspondents)
DIRECTORY = 1  # the correspondents described, on the first view of a message in a process
# The first reading also sets \Seen through the store: the folder row locked, its highest
# mod-sequence read, the entry read, the entry updated, the folder's HIGHESTMODSEQ and counters
# in one update (mss.mailbox.counters, issue 18), and on PostgreSQL the change notification for
# IMAP IDLE (SQLite: 5); and one UPDATE of the sender's delivery status (``displayed``,
# mss.delivery_status).
FIRST_READ_EXTRA = 7
SESSION_TOUCH = re.compile(r"^\s*UPDATE portal_sessions\b", re.IGNORECASE)
TRANSACTION = re.compile(
    r"^\s*BEGIN\b", re.IGNORECASE
)  # SQLite's BEGIN IMMEDIATE; COMMIT is not seen either


@contextmanager
def statements(hub: Hub) -> Iterator[list[str]]:
    """Every SQL statement the hub's database runs inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = hub.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def page_statements(seen: list[str]) -> list[str]:
    """The page's own queries: the session's last-seen write (at most every 30 s) is tested
    apart."""
    return [s for s in seen if not SESSION_TOUCH.match(s) and not TRANSACTION.match(s)]


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    await add_patient(hub.db, INS, "Roux", "Alice")
    return await setup_mail(hub, dev_pki)


async def _fill_inbox(mail: Mail) -> str:
    """Several correspondents and conversations; the Message-ID of the first message."""
    first = await mail.send(DOCTOR, PATIENT, "Résultats de la prise de sang")
    for n in range(3):
        await mail.send(DOCTOR, PATIENT, f"Compte rendu {n}", headers={"In-Reply-To": first})
    await mail.send(OTHER_DOCTOR, PATIENT, "Pansements")
    await mail.send(PHARMACY, PATIENT, "Votre commande")
    return first


async def _deliver_from_unknown_sender(mail: Mail) -> None:
    """A message outside any conversation, from an address the directory does not know."""
    async with mail.hub.db.write() as session:
        mailbox = await find_mailbox(session, PATIENT)
        assert mailbox is not None
        await deliver(
            session,
            mailbox.id,
            b"From: <inconnu@ailleurs.example>\r\nSubject: Ancien\r\n"
            b"Message-ID: <old@x>\r\n\r\nTexte ancien.\r\n",
        )


async def test_inbox_runs_a_fixed_number_of_statements(hub: Hub, mail: Mail) -> None:
    await _fill_inbox(mail)
    await hub.login(INS)
    with statements(hub) as seen:
        response, html = await hub.page("/messages")
    assert response.status == 200
    assert "Dr Jean Dupont" in html and "Anne Martin" in html and "Pharmacie Centrale" in html
    ran = page_statements(seen)
    assert len(ran) <= INBOX_BUDGET, "\n".join(ran)
    await _deliver_from_unknown_sender(mail)
    with statements(hub) as seen:
        response, html = await hub.page("/messages")
    assert response.status == 200 and "inconnu@ailleurs.example" in html
    ran = page_statements(seen)
    assert len(ran) <= INBOX_BUDGET + UNKNOWN_SENDER_EXTRA, "\n".join(ran)


async def test_an_unchanged_inbox_is_not_read_again(hub: Hub, mail: Mail) -> None:
    first = await _fill_inbox(mail)
    await hub.login(INS)
    _response, html = await hub.page("/messages")
    assert "6 messages non lus" in html
    with statements(hub) as seen:
        response, again = await hub.page("/messages")
    assert response.status == 200 and "6 messages non lus" in again
    ran = page_statements(seen)
    assert len(ran) <= INBOX_KEPT_BUDGET, "\n".join(ran)
    # Every change the list shows moves the stamp: a message read, one delivered, a
    # conversation closed.
    await hub.page(f"/messages/{await mail.entry_id(PATIENT, first)}")
    _response, html = await hub.page("/messages")
    assert "5 messages non lus" in html
    await _deliver_from_unknown_sender(mail)
    _response, html = await hub.page("/messages")
    assert "6 messages non lus" in html and "inconnu@ailleurs.example" in html
    assert "conversation clôturée" not in html
    async with hub.db.write() as session:
        conversation_id = (
            await session.scalars(
                select(StoredMessage.conversation_id).where(
                    StoredMessage.message_id_header == first
                )
            )
        ).one()
        assert conversation_id is not None
        await close_conversation(session, conversation_id)
    _response, html = await hub.page("/messages")
    assert "conversation clôturée" in html


async def test_message_page_runs_a_fixed_number_of_statements(hub: Hub, mail: Mail) -> None:
    first = await _fill_inbox(mail)
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, first)
    with statements(hub) as seen:
        response, html = await hub.page(f"/messages/{entry}")
    assert response.status == 200 and "signature vérifiée" in html
    ran = page_statements(seen)
    assert len(ran) <= MESSAGE_BUDGET + DIRECTORY + FIRST_READ_EXTRA, "\n".join(ran)
    with statements(hub) as seen:
        response, html = await hub.page(f"/messages/{entry}")
    assert response.status == 200 and "signature vérifiée" in html
    ran = page_statements(seen)
    assert len(ran) <= MESSAGE_BUDGET, "\n".join(ran)
    # Already \Seen: the reading is audited (and sealed to the patient's chain), nothing else is
    # written.
    writes = [s.lstrip().upper() for s in ran if not s.lstrip().upper().startswith("SELECT")]
    assert len(writes) == 3, writes
    assert [w.split("(")[0].strip() for w in writes] == ["INSERT INTO AUDIT_CHAIN_HEADS"] * 2 + [
        "INSERT INTO AUDIT_EVENTS"
    ], writes
    async with hub.db.read() as session:
        reads = (
            await session.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.action == "message_read", AuditEvent.actor == INS
                )
            )
        ).all()
    assert len(reads) == 2
    (flags,) = [e.flags for e, m in await mail.entries(PATIENT) if m.message_id_header == first]
    assert "\\Seen" in flags


async def test_last_seen_is_written_at_most_every_30_seconds(hub: Hub, mail: Mail) -> None:
    await hub.login(INS)
    with statements(hub) as seen:
        await hub.page("/messages")
    assert not [s for s in seen if SESSION_TOUCH.match(s)]  # just signed in: nothing to record
    hub.clock.advance(seconds=31)
    with statements(hub) as seen:
        await hub.page("/messages")
    assert len([s for s in seen if SESSION_TOUCH.match(s)]) == 1
    with statements(hub) as seen:
        response, _html = await hub.page("/messages")
    assert response.status == 200 and not [s for s in seen if SESSION_TOUCH.match(s)]
