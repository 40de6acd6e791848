"""Patient notifications: jobs per channel, fixed French text and a link, smarthost or outbox, retries."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from mss.config import Settings
from mss.db import Database
from mss.directory.models import Patient, PatientState
from mss.jobs import Job, JobRunner
from mss.notify import NOTICES, notify_patient, read_outbox, register_jobs
from tests.portal.conftest import add_patient

INS = "201751234564118"
MEDICAL = "Compte rendu d'IRM: tumeur"


class Smarthost:
    """A real SMTP server on loopback that keeps what it receives (or refuses recipients)."""

    def __init__(self, refuse: bool = False) -> None:
        self.received: list[Envelope] = []
        self.refuse = refuse

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


async def _serve(handler: Smarthost) -> tuple[asyncio.AbstractServer, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="smarthost.test"), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def patient(db: Database) -> AsyncIterator[Patient]:
    yield await add_patient(db, INS, "Noël", "Hugo", email="hugo@example.org", phone="+33699887766")


async def _notify(db: Database, patient: Patient, kind: str = "new_message") -> list[Job]:
    async with db.write() as session:
        return notify_patient(session, patient, kind, "/messages")


def _runner(db: Database, settings: Settings) -> JobRunner:
    runner = JobRunner(db, services={"settings": settings})
    register_jobs(runner)
    return runner


async def _jobs(db: Database) -> list[Job]:
    async with db.read() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def test_outbox_gets_email_and_sms_without_medical_content(db: Database, settings: Settings,
                                                                 patient: Patient) -> None:
    settings.portal.public_url = "https://sante.example.fr"
    jobs = await _notify(db, patient)
    assert [j.payload["channel"] for j in jobs] == ["email", "sms"]
    await _runner(db, settings).drain()
    mail, sms = read_outbox(settings)
    assert (mail["channel"], mail["to"]) == ("email", "hugo@example.org")
    assert mail["subject"] == NOTICES["new_message"].subject
    assert NOTICES["new_message"].sentence in mail["text"]
    assert "https://sante.example.fr/messages" in mail["text"] and "aucune information médicale" in mail["text"]
    assert (sms["channel"], sms["to"]) == ("sms", "+33699887766")
    assert sms["text"] == f"{NOTICES['new_message'].sentence} https://sante.example.fr/messages"
    assert all(MEDICAL not in str(record) and "Noël" not in str(record) for record in (mail, sms))
    assert [j.state for j in await _jobs(db)] == ["done", "done"]


async def test_smarthost_receives_the_mail(db: Database, settings: Settings, patient: Patient) -> None:
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
    assert envelope.rcpt_tos == ["hugo@example.org"]
    assert envelope.mail_from == "ne-pas-repondre@mss.localhost"
    message = email.message_from_bytes(envelope.original_content or b"", policy=default)
    assert message["Subject"] == NOTICES["new_document"].subject
    body = message.get_content()
    assert NOTICES["new_document"].sentence in body and "https://sante.example.fr/messages" in body
    assert [r["channel"] for r in read_outbox(settings)] == ["sms"]  # only the SMS went to the outbox


async def test_unreachable_smarthost_is_retried_later(db: Database, settings: Settings, patient: Patient) -> None:
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


async def test_refused_recipient_fails_at_once(db: Database, settings: Settings, patient: Patient) -> None:
    handler = Smarthost(refuse=True)
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


async def test_closed_account_is_not_notified(db: Database, settings: Settings, patient: Patient) -> None:
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
