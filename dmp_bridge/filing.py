"""The ``dmp.file`` job: file the documents of a delivered message's XDM packages, answer the
sender.

The answer is an MDN when the sender asked for one, otherwise on an error
the ANS IG's standard e-mail (``dmp_bridge.mdn``; ``decide_filing_answer``).
One transaction per job: every document filed (or replaced, or deleted),
the audit events, the patient's notification and the answer commit together.
The job is idempotent: a marker event (``dmp_filing``, target
``dmp-filing:<message>:<mailbox>``) is written with the work, and a rerun
that finds it does nothing. The message itself was delivered to the
patient whatever happens here.
"""

from __future__ import annotations

import asyncio
import email.utils
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import Viewer, audit
from dmp_bridge.consent_store import consent_facts
from dmp_bridge.documents import find_by_unique_id, insert_document, mark_deleted, target_facts
from dmp_bridge.emergency import NOTIFY_TREATING_JOB, notify_treating
from dmp_bridge.filing_entry import (
    EntryReading,
    PackageReading,
    draft_of,
    package_claims,
    read_packages,
)
from dmp_bridge.intake import FILE_JOB, pdf_attachments, returned_files, xdm_attachments
from dmp_bridge.mdn import DocumentOutcome, ReturnedFile, build_error_email, build_mdn
from mss.audit import AuditEvent, record
from mss.config import Settings
from mss.delivery_status import record_status
from mss.directory.facts import local_domains, mailbox_facts
from mss.directory.models import Mailbox, Patient
from mss.jobs import JobContext, JobRunner, PermanentFailure, enqueue
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import INBOX, append, store_message
from mss.message import Message, UnreadableMessage, parse_message
from mss.notify import notify_patient
from mss.policy.consent import ConsentFacts, ViewerKind
from mss.policy.decision import Decision
from mss.policy.dmp_filing import FilingFacts, MdnFacts, decide_filing, decide_filing_answer
from mss.policy.facts import domain_of
from mss.policy.mss_headers import decide_ddm_subject, decide_mss_headers, headers_to_write
from mss.smtp_gateway import RELAY_ATTEMPTS, RELAY_JOB

RECORD_LINK = "/dossier"


def marker(message_id: int, mailbox_id: int) -> str:
    return f"dmp-filing:{message_id}:{mailbox_id}"


async def run_filing_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler for ``dmp.file``: read off the loop, then decide and write in one transaction."""
    settings = ctx.services.settings
    async with ctx.db.read() as session:
        stored = await session.get(StoredMessage, payload["message_id"])
        if stored is None:
            raise PermanentFailure(f"stored message {payload['message_id']} is gone")
        raw, signer = bytes(stored.raw), stored.signer_id_nat
    try:
        message = parse_message(raw)  # the job's one reading of the stored message
    except UnreadableMessage as exc:
        raise PermanentFailure(f"stored message {payload['message_id']}: {exc}") from None
    readings = await asyncio.to_thread(
        read_packages, xdm_attachments(message), pdf_attachments(message)
    )
    async with ctx.db.write() as session:
        done = marker(payload["message_id"], payload["mailbox_id"])
        if (
            await session.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.action == "dmp_filing", AuditEvent.target == done
                )
            )
        ).first() is not None:
            return
        mailbox = await session.get(Mailbox, payload["mailbox_id"])
        patient = (
            await session.get(Patient, mailbox.patient_id)
            if mailbox and mailbox.patient_id
            else None
        )
        if mailbox is None or patient is None:
            raise PermanentFailure(f"mailbox {payload['mailbox_id']} is not a patient's any more")
        filer = _Filer(session, patient, message, payload["message_id"], signer)
        claims = package_claims(readings, message.mss_codecda, message.mss_ins)
        claimed = decide_ddm_subject(message.facts.subject, len(readings))
        claimed = decide_mss_headers(claims) if claimed.allowed else claimed
        if claimed.allowed:
            outcomes = await filer.file_all(readings)
        else:  # not what its subject or X-MSS headers say: nothing of it is filed
            outcomes = await filer.refuse_all(readings, claimed)
        code = next((o.code for o in outcomes if not o.filed), None)
        await record_status(
            session,
            message_id=filer.message_id,
            recipient=mailbox.address,
            state="failed" if code is not None else "filed",
            code=str(code or ""),
            detail=next((o.sentence for o in outcomes if not o.filed), ""),
            detail_fr=next((o.sentence_fr for o in outcomes if not o.filed), ""),
        )
        record(
            session,
            "dmp_filing",
            actor_kind="system",
            actor=settings.hostname,
            target=done,
            source="mss",
            filed=sum(o.filed for o in outcomes),
            error=code,
        )
        if filer.visible_to_patient:
            notify_patient(session, patient, "new_document", RECORD_LINK)
        written = headers_to_write(claims.document_codes, claims.qualified_ins)
        await _send_mdn(session, settings, mailbox, message, payload, outcomes, code, written)


class _Filer:
    """Files the entries of one message for one patient, inside the job's transaction."""

    def __init__(
        self,
        session: AsyncSession,
        patient: Patient,
        message: Message,
        stored_message_id: int,
        signer_id_nat: str | None,
    ) -> None:
        self.session, self.patient, self.message = session, patient, message
        self.stored_message_id = stored_message_id
        self.signer_id_nat = signer_id_nat
        self.message_id = next(iter(message.header_values("Message-ID")), "").strip()
        self.visible_to_patient = False

    async def file_all(self, readings: list[PackageReading]) -> list[DocumentOutcome]:
        consent = await consent_facts(self.session, self.patient)
        outcomes: list[DocumentOutcome] = []
        for reading in readings:
            if reading.error is not None:
                outcomes.append(
                    DocumentOutcome(
                        "IHE_XDM.zip",
                        False,
                        reading.error.code,
                        reading.error.sentence_fr,
                        reading.error.sentence,
                    )
                )
                continue
            for entry in reading.entries:
                outcomes.append(await self.file_one(entry, consent))
        if not outcomes:
            outcomes.append(
                DocumentOutcome(
                    "IHE_XDM.zip", False, 906, "Aucun paquet XDM lisible", "No readable XDM package"
                )
            )
        for outcome in outcomes:
            if not outcome.filed:
                await self._audit_refusal(outcome)
        return outcomes

    async def refuse_all(
        self, readings: list[PackageReading], decision: Decision
    ) -> list[DocumentOutcome]:
        """Every document refused with the decision's integration error (audited once each)."""
        assert decision.code is not None
        titles = [e.title for r in readings for e in r.entries] or ["IHE_XDM.zip"]
        outcomes = [
            DocumentOutcome(title, False, decision.code, decision.sentence_fr, decision.sentence)
            for title in titles
        ]
        for outcome in outcomes:
            await self._audit_refusal(outcome)
        return outcomes

    async def file_one(self, reading: EntryReading, consent: ConsentFacts) -> DocumentOutcome:
        entry = reading.entry
        existing = await find_by_unique_id(self.session, self.patient, entry.unique_id or "")
        if entry.action != "D" and existing is not None:
            return DocumentOutcome(reading.title, True)  # the same document sent again
        target_uid = reading.target_unique_id
        target = None
        if entry.action in ("C", "D") and target_uid:
            target = await find_by_unique_id(self.session, self.patient, target_uid)
        author = entry.author
        institution = author.institutions[0].id if author and author.institutions else None
        decision = decide_filing(
            FilingFacts(
                record_open=consent.record_open,
                recipient_ins=self.patient.ins,
                entry_ins=entry.ins.matricule if entry.ins else None,
                author_id_nat=author.id_nat if author else None,
                author_institution=institution,
                sender_id_nat=self.signer_id_nat,
                consent=consent,
                action=entry.action,
                target_unique_id=target_uid,
                target=target_facts(target),
                refusals=tuple((e.code, e.sentence, e.sentence_fr) for e in reading.refusals),
            )
        )
        if not decision.allowed:
            assert decision.code is not None
            return DocumentOutcome(
                reading.title, False, decision.code, decision.sentence_fr, decision.sentence
            )
        draft = draft_of(
            reading, message_id=self.message_id, stored_message_id=self.stored_message_id
        )
        viewer = Viewer(
            ViewerKind.PROFESSIONAL,
            draft.author_id_nat or self.message_id,
            draft.author_name,
            id_nat=draft.author_id_nat,
            source="mss",
        )
        if entry.action == "D":
            assert target is not None
            await mark_deleted(self.session, target)
            await audit(
                self.session,
                "document_deleted",
                viewer,
                self.patient,
                target,
                message_id=self.message_id,
            )
            return DocumentOutcome(reading.title, True)
        document = await insert_document(self.session, self.patient, draft, target)
        await audit(
            self.session,
            "document_replaced" if target else "document_filed",
            viewer,
            self.patient,
            document,
            title=document.title,
            message_id=self.message_id,
        )
        self.visible_to_patient |= not document.invisible_to_patient
        return DocumentOutcome(reading.title, True)

    async def _audit_refusal(self, outcome: DocumentOutcome) -> None:
        viewer = Viewer(
            ViewerKind.PROFESSIONAL, self.signer_id_nat or self.message_id or "?", "", source="mss"
        )
        await audit(
            self.session,
            "document_filing_refused",
            viewer,
            self.patient,
            code=outcome.code,
            message_id=self.message_id,
        )


async def _send_mdn(
    session: AsyncSession,
    settings: Settings,
    mailbox: Mailbox,
    message: Message,
    payload: dict[str, Any],
    outcomes: list[DocumentOutcome],
    code: int | None,
    mss_headers: list[tuple[str, str]],
) -> None:
    """The MDN back to the sender when asked (RFC 8098 rules), else on an error the IG's
    standard e-mail; through the store or the relay."""
    asked = tuple(
        a
        for _, a in email.utils.getaddresses(message.header_values("Disposition-Notification-To"))
        if a
    )
    answer = decide_filing_answer(
        MdnFacts(
            asked,
            payload.get("mail_from") or "",
            next(iter(message.header_values("Auto-Submitted")), ""),
            message.content_type[0],
        ),
        code,
    )
    if answer is None:
        return
    to = answer.to
    if answer.kind == "mdn":
        answer_id = f"<dmp-mdn-{payload['message_id']}-{payload['mailbox_id']}@{settings.hostname}>"
        original_recipient = payload.get("original_recipient") or f"rfc822;{mailbox.address}"
        raw_answer = build_mdn(
            reporting_host=settings.hostname,
            final_recipient=mailbox.address,
            to=to,
            original_message=message,
            outcomes=outcomes,
            code=code,
            message_id=answer_id,
            original_recipient=original_recipient,
            mss_headers=mss_headers,
        )
    else:
        assert code is not None
        answer_id = (
            f"<dmp-error-{payload['message_id']}-{payload['mailbox_id']}@{settings.hostname}>"
        )
        files = [ReturnedFile(*f) for f in returned_files(message)]
        raw_answer = build_error_email(
            reporting_host=settings.hostname,
            final_recipient=mailbox.address,
            to=to,
            original_message=message,
            outcomes=outcomes,
            code=code,
            message_id=answer_id,
            files=files,
            mss_headers=mss_headers,
        )
    stored = await store_message(session, raw_answer)
    if domain_of(to) in local_domains(settings):
        box = await mailbox_facts(session, to)
        if box is not None:
            await append(session, box.id, INBOX, stored)
            record(
                session,
                f"message.{answer.kind}",
                actor_kind="system",
                actor=settings.hostname,
                target=box.address,
                source="dmp",
                message_id=answer_id,
                error=code,
            )
        return
    enqueue(
        session,
        RELAY_JOB,
        {
            "message_id": stored.id,
            "mail_from": "",
            "recipients": [to],
            "domain": domain_of(to),
            "max_attempts": RELAY_ATTEMPTS,
        },
        max_attempts=RELAY_ATTEMPTS,
    )


def register_jobs(runner: JobRunner) -> None:
    """Register the DMP bridge's job kinds: filing and the médecin traitant's break-glass notice."""
    runner.register(FILE_JOB, run_filing_job)
    runner.register(NOTIFY_TREATING_JOB, notify_treating)
