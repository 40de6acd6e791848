"""Patient notifications: jobs per channel, fixed French text and a link, smarthost or outbox,
retries."""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import contextmanager
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import delete, event, select

from mss.config import Settings
from mss.db import Database
from mss.directory.models import Mailbox, Patient, PatientState
from mss.jobs import Job, JobRunner
from mss.notify import (
    NOTICES,
    notification_text,
    notify_patient,
    outbox_file,
    read_outbox,
    register_jobs,
)
from mss.services import Services
from tests.portal.conftest import add_patient

INS = "201751234564118"
MEDICAL = "Compte rendu d'IRM: tumeur"


class Smarthost:
    """A real SMTP server on loopback that keeps what it receives (or refuses some recipients)."""

    def __init__(self, refuse: Collection[str] = ()) -> None:
        self.received: list[Envelope] = []
        self.refuse = refuse
        self.connections = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


async def _serve(handler: Smarthost) -> tuple[asyncio.AbstractServer, int]:
    def connection() -> SMTP:
        handler.connections += 1
        return SMTP(handler, hostname="smarthost.test")

    server = await asyncio.get_running_loop().create_server(connection, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _ins(number: int) -> str:
    base = f"2017512345{number:03d}"
    return base + f"{97 - int(base) % 97:02d}"


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the database runs inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


@pytest.fixture
async def patient(db: Database) -> AsyncIterator[Patient]:
    yield await add_patient(db, INS, "Noël", "Hugo", email="hugo@example.org", phone="+33699887766")


async def _notify(db: Database, patient: Patient, kind: str = "new_message") -> list[Job]:
    async with db.write() as session:
        return notify_patient(session, patient, kind, "/messages")


def _runner(db: Database, settings: Settings) -> JobRunner:
    runner = JobRunner(db, services=Services(settings))
    register_jobs(runner)
    return runner


async def _jobs(db: Database) -> list[Job]:
    async with db.read() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def test_outbox_gets_email_and_sms_without_medical_content(
    db: Database, settings: Settings, patient: Patient
) -> None:
    settings.portal.public_url = "https://sante.example.fr"
    jobs = await _notify(db, patient)
    assert [j.payload["channel"] for j in jobs] == ["email", "sms"]
    await _runner(db, settings).drain()
    mail, sms = read_outbox(settings)
    assert (mail["channel"], mail["to"]) == ("email", "hugo@example.org")
    assert mail["subject"] == NOTICES["new_message"].subject
    assert NOTICES["new_message"].sentence in mail["text"]
    assert (
        "https://sante.example.fr/messages" in mail["text"]
        and "aucune information médicale" in mail["text"]
    )
    assert (sms["channel"], sms["to"]) == ("sms", "+33699887766")
    assert sms["text"] == f"{NOTICES['new_message'].sentence} https://sante.example.fr/messages"
    assert all(MEDICAL not in str(record) and "Noël" not in str(record) for record in (mail, sms))
    assert [j.state for j in await _jobs(db)] == ["done", "done"]


async def test_smarthost_receives_the_mail(
    db: Database, settings: Settings, patient: Patient
) -> None:
    handler = Smarthost()
    server, port = await _serve(handler)
    settings.notifications.smarthost, settings.notifications.smarthost_port = "127.0.0.1", port
    settings.portal.public_url = "https://sante.example.fr/"
    try:
        await _notify(db, patient, "new_document")
        await _runner(db, settings).drain()
    finally:
        server.close()
        await server.wait_closed()
    [envelope] = handler.received
    assert handler.connections == 1
    assert envelope.rcpt_tos == ["hugo@example.org"]
    assert envelope.mail_from == "ne-pas-repondre@mss.localhost"
    message = email.message_from_bytes(envelope.original_content or b"", policy=default)
    assert message["Subject"] == NOTICES["new_document"].subject
    body = message.get_content()
    assert NOTICES["new_document"].sentence in body and "https://sante.example.fr/messages" in body
    assert [r["channel"] for r in read_outbox(settings)] == [
        "sms"
    ]  # only the SMS went to the outbox


async def test_unreachable_smarthost_is_retried_later(
    db: Database, settings: Settings, patient: Patient
) -> None:
    server, port = await _serve(Smarthost())
    server.close()
    await server.wait_closed()  # nothing listens on this port any more
    settings.notifications.smarthost, settings.notifications.smarthost_port = "127.0.0.1", port
    await _notify(db, patient)
    await _runner(db, settings).run_once()
    mail_job, sms_job = await _jobs(db)
    assert (mail_job.state, mail_job.attempts) == ("pending", 1) and mail_job.last_error
    assert mail_job.run_after > mail_job.created_at
    assert sms_job.state == "done"


async def test_refused_recipient_fails_at_once(
    db: Database, settings: Settings, patient: Patient
) -> None:
    handler = Smarthost(refuse={"hugo@example.org"})
    server, port = await _serve(handler)
    settings.notifications.smarthost, settings.notifications.smarthost_port = "127.0.0.1", port
    try:
        await _notify(db, patient)
        await _runner(db, settings).run_once()
    finally:
        server.close()
        await server.wait_closed()
    mail_job = (await _jobs(db))[0]
    assert mail_job.state == "failed" and "refused" in mail_job.last_error


async def test_closed_account_is_not_notified(
    db: Database, settings: Settings, patient: Patient
) -> None:
    await _notify(db, patient)
    async with db.write() as session:
        row = await session.get(Patient, patient.id)
        row.state = PatientState.CLOSED
    await _runner(db, settings).drain()
    assert read_outbox(settings) == []
    assert [j.state for j in await _jobs(db)] == ["done", "done"]


async def test_bad_kind_or_link_is_refused(db: Database, patient: Patient) -> None:
    kwargs: dict[str, Any] = {}
    async with db.write() as session:
        with pytest.raises(ValueError, match="unknown notification kind"):
            notify_patient(session, patient, "lab_result_positive", "/", **kwargs)
        with pytest.raises(ValueError, match="portal path"):
            notify_patient(session, patient, "new_message", "https://evil.example/")
        with pytest.raises(ValueError, match="portal path"):
            notify_patient(session, patient, "new_message", "//evil.example/")


def _sent(settings: Settings) -> list[dict[str, Any]]:
    return [
        {key: value for key, value in record.items() if key != "at"}
        for record in read_outbox(settings)
    ]


async def test_a_batch_writes_the_outbox_lines_in_order_with_one_write(
    db: Database, settings: Settings, patient: Patient
) -> None:
    settings.portal.public_url = "https://sante.example.fr"
    lina = await add_patient(db, _ins(2), "Petit", "Lina", phone="+33611000002")
    marc = await add_patient(db, _ins(3), "Blanc", "Marc", phone=None, email="marc@example.org")
    zoe = await add_patient(
        db,
        _ins(4),
        "Roux",
        "Zoé",
        phone="+33611000004",
        email="zoe@example.org",
        state=PatientState.OPPOSED,
    )
    gone = await add_patient(db, _ins(5), "Noir", "Paul", phone="+33611000005")
    for who, kind in (
        (patient, "new_message"),
        (zoe, "new_message"),
        (lina, "new_document"),
        (gone, "new_message"),
        (marc, "appointment"),
        (patient, "appointment"),
    ):
        await _notify(db, who, kind)
    async with db.write() as session:
        await session.execute(delete(Mailbox).where(Mailbox.patient_id == gone.id))
        await session.execute(delete(Patient).where(Patient.id == gone.id))

    assert await _runner(db, settings).run_once() == 9

    def mail(to: str, kind: str) -> dict[str, Any]:
        subject, text = notification_text(settings, kind, "/messages")
        return {"channel": "email", "to": to, "subject": subject, "text": text}

    def sms(to: str, kind: str) -> dict[str, Any]:
        return {
            "channel": "sms",
            "to": to,
            "text": f"{NOTICES[kind].sentence} https://sante.example.fr/messages",
        }

    assert _sent(settings) == [
        mail("hugo@example.org", "new_message"),
        sms("+33699887766", "new_message"),
        sms("+33611000002", "new_document"),
        mail("marc@example.org", "appointment"),
        mail("hugo@example.org", "appointment"),
        sms("+33699887766", "appointment"),
    ]
    lines = outbox_file(settings).read_bytes().decode().splitlines()
    assert all(line == json.dumps(json.loads(line), ensure_ascii=False) for line in lines)
    assert all(line.startswith('{"at": ') for line in lines)
    assert len({json.loads(line)["at"] for line in lines}) == 1, "not written together"
    assert [(job.state, job.attempts) for job in await _jobs(db)] == [("done", 1)] * 9


async def test_a_batch_reads_the_contacts_with_one_statement(
    db: Database, settings: Settings, patient: Patient
) -> None:
    numbers = iter(range(10, 100))

    async def run(count: int) -> list[str]:
        for number in (next(numbers) for _ in range(count)):
            who = await add_patient(
                db,
                _ins(number),
                "Martin",
                "Léa",
                phone=f"+336110001{number:02d}",
                email=f"lea{number}@example.org",
            )
            await _notify(db, who)
        with statements(db) as seen:
            assert await _runner(db, settings).run_once() == 2 * count
        return seen

    small, large = await run(1), await run(6)
    assert len(small) == len(large), (small, large)  # claim, contacts, done (and SQLite's BEGINs)
    assert len([s for s in large if "FROM patients" in s]) == 1
    assert len(read_outbox(settings)) == 14
    assert {job.state for job in await _jobs(db)} == {"done"}


async def test_a_refused_recipient_fails_alone_and_the_others_are_sent_once(
    db: Database, settings: Settings, patient: Patient
) -> None:
    handler = Smarthost(refuse={"marc@example.org"})
    server, port = await _serve(handler)
    settings.notifications.smarthost, settings.notifications.smarthost_port = "127.0.0.1", port
    marc = await add_patient(db, _ins(3), "Blanc", "Marc", phone=None, email="marc@example.org")
    ana = await add_patient(db, _ins(6), "Vert", "Ana", phone=None, email="ana@example.org")
    try:
        for who in (patient, marc, ana):
            await _notify(db, who)
        assert await _runner(db, settings).run_once() == 4
    finally:
        server.close()
        await server.wait_closed()
    assert [envelope.rcpt_tos for envelope in handler.received] == [
        ["hugo@example.org"],
        ["ana@example.org"],
    ]
    assert handler.connections == 2  # the batch's, then marc's job alone
    assert [r["to"] for r in read_outbox(settings)] == ["+33699887766"]
    states = {
        job.payload["patient_id"]: (job.payload["channel"], job.state, job.attempts, job.last_error)
        for job in await _jobs(db)
        if job.payload["channel"] == "email"
    }
    assert (
        states[marc.id][:3] == ("email", "failed", 1)
        and "refused marc@example.org" in states[marc.id][3]
    )
    assert states[patient.id][1:3] == states[ana.id][1:3] == ("done", 1)


class FlakySms:
    """An SMS provider's API, per message, whose gateway is down for some numbers."""

    def __init__(self, down: Collection[str]) -> None:
        self.sent: list[tuple[str, str]] = []
        self.down = down

    async def send(self, phone: str, text: str) -> None:
        if phone in self.down:
            raise ConnectionError("SMS gateway timed out")
        self.sent.append((phone, text))


async def test_a_failed_sms_is_retried_alone(
    db: Database, settings: Settings, patient: Patient
) -> None:
    provider = FlakySms(down={"+33611000002"})
    lina = await add_patient(db, _ins(2), "Petit", "Lina", phone="+33611000002")
    marc = await add_patient(db, _ins(3), "Blanc", "Marc", phone="+33611000003")
    for who in (patient, lina, marc):
        await _notify(db, who)
    runner = JobRunner(db, services=Services(settings, sms=provider))
    register_jobs(runner)
    assert await runner.run_once() == 4
    assert [phone for phone, _ in provider.sent] == ["+33699887766", "+33611000003"]
    assert [r["to"] for r in read_outbox(settings)] == ["hugo@example.org"]
    states = [
        (job.payload["patient_id"], job.state, job.attempts, job.last_error)
        for job in await _jobs(db)
    ]
    assert states == [
        (patient.id, "done", 1, ""),
        (patient.id, "done", 1, ""),
        (lina.id, "pending", 1, "ConnectionError: SMS gateway timed out"),
        (marc.id, "done", 1, ""),
    ]
