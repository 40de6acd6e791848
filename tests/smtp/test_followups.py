"""Follow-ups as registered hooks (``mss.followups``): delivery enqueues what is registered.

A follow-up kind is added here, in the test, without touching ``mss/smtp_gateway``:
it counts the messages delivered to each organisation's mailboxes, and its jobs are
enqueued by a real SMTP delivery and run by the job runner.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from mss import followups
from mss.config import Settings
from mss.crypto import pki
from mss.db import Database
from mss.directory.facts import PatientContact
from mss.directory.models import Mailbox, MailboxKind
from mss.followups import Delivery, FollowUp, FollowUps, FollowUpsNotRegistered
from mss.jobs import Job, JobContext
from mss.message import Message, parse_message
from mss.policy import MailboxFacts
from mss.serve import Hub as ServeHub
from mss.serve import register_follow_ups
from mss.services import Services
from mss.smtp_gateway import Gateway
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PATIENT, PHARMACY, SERVICE, Hub, message

COUNT_JOB = "test.count_per_organisation"


def _to_an_organisation(delivery: Delivery) -> bool:
    return delivery.recipient.kind is MailboxKind.ORG


async def _jobs(hub: Hub, kind: str) -> list[Job]:
    async with hub.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == kind))).all())


async def test_a_follow_up_registered_in_a_test_runs_after_a_real_smtp_delivery(hub: Hub) -> None:
    counts: Counter[int] = Counter()

    async def count(ctx: JobContext, payload: dict[str, Any]) -> None:
        async with ctx.db.read() as session:
            mailbox = await session.get(Mailbox, payload["mailbox_id"])
        assert mailbox is not None and mailbox.organisation_id is not None
        counts[mailbox.organisation_id] += 1

    followups.registry.register(FollowUp(COUNT_JOB, lambda message: True, _to_an_organisation))
    hub.runner.register(COUNT_JOB, count)
    try:
        client = await hub.login_client()
        recipients = [SERVICE, PHARMACY, OTHER_DOCTOR]
        errors, _ = await client.sendmail(DOCTOR, recipients, message(DOCTOR, recipients))
        await client.sendmail(DOCTOR, [SERVICE], message(DOCTOR, SERVICE, subject="Encore"))
        await client.quit()
        assert errors == {}
        jobs = await _jobs(hub, COUNT_JOB)  # committed with the deliveries, before any runs
        assert len(jobs) == 3 and {j.state for j in jobs} == {"pending"}
        assert {j.payload["mailbox_id"] for j in jobs} == {hub.ids[SERVICE], hub.ids[PHARMACY]}
        await hub.runner.drain()
        async with hub.db.read() as session:
            hospital = (await session.get(Mailbox, hub.ids[SERVICE])).organisation_id  # type: ignore[union-attr]
            pharmacy = (await session.get(Mailbox, hub.ids[PHARMACY])).organisation_id  # type: ignore[union-attr]
        assert counts == {hospital: 2, pharmacy: 1}
        assert {j.state for j in await _jobs(hub, COUNT_JOB)} == {"done"}
    finally:
        followups.registry.unregister(COUNT_JOB)


async def test_a_follow_up_whose_predicate_declines_the_message_gets_no_job(hub: Hub) -> None:
    wanted = FollowUp(COUNT_JOB, lambda message: b"X-Count: yes" in message.raw)
    followups.registry.register(wanted)
    try:
        client = await hub.login_client()
        await client.sendmail(DOCTOR, [SERVICE], message(DOCTOR, SERVICE))
        await client.sendmail(DOCTOR, [SERVICE], message(DOCTOR, SERVICE, X_Count="yes"))
        await client.quit()
        assert len(await _jobs(hub, COUNT_JOB)) == 1
    finally:
        followups.registry.unregister(COUNT_JOB)


def _patient_delivery(message: Message) -> Delivery:
    patient = MailboxFacts(7, PATIENT, MailboxKind.PAT)
    return Delivery(message, 42, patient, PatientContact(3, "p@example.org", None), DOCTOR)


def test_a_patient_is_told_once_the_agenda_job_telling_them_of_a_convocation() -> None:
    registry = register_follow_ups(FollowUps())
    plain = parse_message(message(DOCTOR, PATIENT))
    jobs = list(registry.jobs_for(registry.wanted(plain), _patient_delivery(plain)))
    assert [(j.kind, j.payload["kind"], j.dedupe_key) for j in jobs] == [
        ("notify.patient", "new_message", "notify.patient:42:7")
    ]
    convocation = parse_message(message(DOCTOR, PATIENT).replace(b"text/plain", b"text/calendar"))
    jobs = list(registry.jobs_for(registry.wanted(convocation), _patient_delivery(convocation)))
    assert [(j.kind, j.payload, j.dedupe_key) for j in jobs] == [
        ("agenda.convocation", {"message_id": 42, "mailbox_id": 7}, "agenda.convocation:42:7")
    ]


async def test_a_standard_hub_registers_the_dmp_agenda_and_notification_follow_ups(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = FollowUps()
    monkeypatch.setattr(followups, "registry", fresh)
    for name in ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "https"):
        setattr(settings.listeners, name, False)
    settings.listeners.workers = False
    settings.data_path.mkdir(parents=True, exist_ok=True)
    pki.init_pki(settings.pki_dir, ["localhost"], operator_domain=settings.domain)
    # A hub that neither listens for mail or HTTPS nor runs jobs delivers nothing: it registers
    # nothing (an IMAP-only process stays light, issue 18)...
    hub = ServeHub(settings, Database(settings.effective_database_url))
    await hub.start()
    try:
        assert fresh.kinds() == frozenset()
    finally:
        await hub.stop()
    # ...and one that runs the job workers (which may deliver) registers every follow-up.
    settings.listeners.workers = True
    hub = ServeHub(settings, Database(settings.effective_database_url))
    await hub.start()
    try:
        assert {"dmp.file", "agenda.convocation", "notify.patient"} <= fresh.kinds()
    finally:
        await hub.stop()


def test_a_gateway_refuses_to_start_where_no_follow_up_is_registered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mss.smtp_gateway.stages as stages

    monkeypatch.setattr(stages, "follow_ups", FollowUps())
    with pytest.raises(FollowUpsNotRegistered, match="mss.serve.register_follow_ups"):
        Gateway(settings, Database(settings.effective_database_url), Services(settings))
