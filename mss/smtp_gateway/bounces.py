"""The ``smtp.dsn`` job: build the DSN and deliver it to the sender through the same store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mss.audit import record
from mss.delivery_status import record_status
from mss.directory.facts import local_domains, mailbox_facts
from mss.jobs import JobContext, PermanentFailure, enqueue
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import INBOX, append, store_message
from mss.policy import domain_of
from mss.smtp_gateway.delivery import RELAY_ATTEMPTS, RELAY_JOB
from mss.smtp_gateway.dsn import FailedRecipient, build_dsn, original_header_block


async def run_dsn_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Deliver a DSN once (its Message-ID is derived from the job, so a rerun finds it stored)."""
    settings = ctx.services.settings
    mail_from = payload.get("mail_from") or ""
    if not mail_from:
        return  # never bounce a bounce
    dsn_id = f"<dsn-{ctx.job_id}@{settings.hostname}>"
    async with ctx.db.write() as session:
        already = (
            await session.scalars(
                select(StoredMessage.id).where(StoredMessage.message_id_header == dsn_id)
            )
        ).first()
        if already is not None:
            return
        original = await session.get(StoredMessage, payload["message_id"])
        if original is None:
            raise PermanentFailure(f"stored message {payload['message_id']} is gone")
        raw = build_dsn(
            hostname=settings.hostname,
            postmaster=f"postmaster@{settings.domain}",
            to=mail_from,
            original_headers=original_header_block(bytes(original.raw)),
            original_message_id=original.message_id_header,
            failures=[FailedRecipient(**f) for f in payload["failures"]],
            message_id=dsn_id,
        )
        local_sender = domain_of(mail_from) in local_domains(settings)
        for failure in payload["failures"] if local_sender else ():
            # the hub keeps statuses for its own mailboxes' messages (mss.delivery_status)
            await record_status(
                session,
                message_id=original.message_id_header,
                sender=mail_from,
                recipient=str(failure["recipient"]),
                state="failed",
                code=str(failure.get("status") or ""),
                detail=str(failure.get("sentence") or ""),
                detail_fr=str(failure.get("sentence_fr") or ""),
            )
        stored = await store_message(session, raw)
        if local_sender:
            mailbox = await mailbox_facts(session, mail_from)
            if mailbox is None:
                return
            await append(session, mailbox.id, INBOX, stored)
            record(
                session,
                "message.dsn",
                actor_kind="system",
                actor=settings.hostname,
                target=mailbox.address,
                source="smtp",
                message_id=dsn_id,
                original=original.message_id_header,
                recipients=[f["recipient"] for f in payload["failures"]],
            )
            return
        enqueue(
            session,
            RELAY_JOB,
            {
                "message_id": stored.id,
                "mail_from": "",
                "recipients": [mail_from],
                "domain": domain_of(mail_from),
                "max_attempts": RELAY_ATTEMPTS,
            },
            max_attempts=RELAY_ATTEMPTS,
        )
