"""What the sent-messages status tests share: the doctor's read receipt for the patient's
message (a signed RFC 8098 MDN through the gateway), a DSN for it, and the jobs they cause."""

from __future__ import annotations

import uuid

from mss.directory.facts import mailbox_facts
from mss.jobs import JobRunner, enqueue
from mss.smtp_gateway import DSN_JOB, register_jobs
from tests.portal.messaging import DOCTOR, Mail


async def run_jobs(mail: Mail) -> None:
    """The gateway's jobs (relay, DSN, reports) as the hub's job process runs them."""
    runner = JobRunner(mail.hub.db, services=mail.services)
    register_jobs(runner)
    await runner.drain()


async def doctor_displayed(mail: Mail, patient: str, original: str) -> None:
    """The doctor's mail client says the patient's message was displayed."""
    boundary = uuid.uuid4().hex
    raw = (
        f"From: {DOCTOR}\r\nTo: {patient}\r\nSubject: Accusé de lecture\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@test.mss.localhost>\r\nIn-Reply-To: {original}\r\n"
        f"References: {original}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=disposition-notification;\r\n"
        f' boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAffiché.\r\n"
        f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Reporting-UA: cabinet.example; Thunderbird\r\nFinal-Recipient: rfc822; {DOCTOR}\r\n"
        f"Original-Message-ID: {original}\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    async with mail.hub.db.read() as session:
        facts = await mailbox_facts(session, DOCTOR)
    assert facts is not None
    signed = mail.identity(DOCTOR).sign(raw)
    outcome = await mail.gateway.submit(facts, [patient], signed, channel="submission")
    assert outcome.decision.allowed, outcome.decision.sentence
    await run_jobs(mail)


async def bounced(mail: Mail, patient: str, stored_id: int, recipient: str) -> None:
    """The other operator refused the patient's message for ``recipient`` (the DSN job)."""
    async with mail.hub.db.write() as session:
        enqueue(
            session,
            DSN_JOB,
            {
                "message_id": stored_id,
                "mail_from": patient,
                "failures": [
                    {
                        "recipient": recipient,
                        "code": 550,
                        "status": "5.1.1",
                        "sentence": f"No such mailbox: <{recipient}>",
                        "sentence_fr": f"Boîte inconnue : <{recipient}>",
                    }
                ],
            },
        )
    await run_jobs(mail)
