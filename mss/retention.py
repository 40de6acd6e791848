"""Retention of unused mailboxes, as jobs: a daily pass warns, then purges
(``mss.policy.retention``).

``retention.daily`` reads every mailbox's facts (a few columns, in chunks), warns
those the policy says to warn, queues one ``retention.purge`` job per mailbox to
purge, and queues itself for the next day. A warning goes to a patient through
the notification path (``mss.notify``: e-mail or SMS, no medical content) and to
a professional as a notice delivered into the mailbox's INBOX through the store
(as a DSN is), since the hub knows no other address for them.

``retention.purge`` removes the mailbox's folder entries in bounded transactions
(``[retention] batch`` entries each, recorded as expunged for QRESYNC clients), and
with them the stored messages nothing else refers to: another mailbox's copy, a
DMP document filed from the message, an unfinished job keep it. The conversation a
message belongs to does not keep it once no folder holds it. The DMP itself is
never touched. One audit event per purged mailbox counts what went (no content).

Activity is recorded at login (``mss.directory.activity.note_activity``): one
conditional UPDATE the first time a mailbox logs in on a given day, nothing after that.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record
from mss.config import Settings
from mss.db import Database, utcnow
from mss.directory.facts import PatientContact
from mss.directory.models import Mailbox, Patient, PatientState
from mss.jobs import JobContext, JobRunner, enqueue
from mss.jobs import schedule_daily as schedule_daily_job
from mss.mailbox.entries import remove_entries
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.orphans import delete_unreferenced_messages
from mss.mailbox.store import deliver
from mss.notify import notify_patient
from mss.policy.notices import decide_retention_notice
from mss.policy.retention import (
    RetentionDecision,
    RetentionFacts,
    RetentionRules,
    RetentionStep,
    WarningChannel,
    decide_retention,
)

log = logging.getLogger("mss.retention")

DAILY_JOB = "retention.daily"
PURGE_JOB = "retention.purge"
CHUNK = 1000  # mailboxes read per statement by the daily pass

Clock = Callable[[], dt.datetime]


def rules_of(settings: Settings) -> RetentionRules:
    r = settings.retention
    return RetentionRules(r.warn_after_days, r.purge_after_days, r.closed_account_days)


def _clock(ctx: JobContext) -> Clock:
    return ctx.services.clock or utcnow  # tests inject one


# -- facts ---------------------------------------------------------------------------------

_FACTS = select(
    Mailbox.id,
    Mailbox.address,
    Mailbox.patient_id,
    Mailbox.created_at,
    Mailbox.last_active_on,
    Mailbox.retention_warned_on,
    Mailbox.retention_purged_on,
    Patient.state,
    Patient.closed_at,
    Patient.state_changed_at,
    Patient.email,
    Patient.phone,
).outerjoin(Patient, Patient.id == Mailbox.patient_id)


def _facts(row: Any) -> RetentionFacts:
    closed_on = None
    if row.state is PatientState.CLOSED:
        closed_on = (row.closed_at or row.state_changed_at).date()
    elif row.state is PatientState.OPPOSED:  # the patient refused the account: it is closed as well
        closed_on = row.state_changed_at.date()
    return RetentionFacts(
        mailbox_id=row.id,
        is_patient=row.patient_id is not None,
        created_on=row.created_at.date(),
        last_active_on=row.last_active_on,
        warned_on=row.retention_warned_on,
        purged_on=row.retention_purged_on,
        account_closed_on=closed_on,
    )


# -- the daily pass ------------------------------------------------------------------------


async def run_daily(db: Database, settings: Settings, now: dt.datetime) -> dict[str, int]:
    """Warn and queue purges as the policy says for ``now``; how many of each."""
    rules, today = rules_of(settings), now.date()
    counts = {"warned": 0, "purges": 0}
    after = 0
    while True:
        async with db.read() as session:
            rows = (
                await session.execute(
                    _FACTS.where(Mailbox.id > after).order_by(Mailbox.id).limit(CHUNK)
                )
            ).all()
        if not rows:
            return counts
        after = rows[-1].id
        decided = [(row, decide_retention(_facts(row), rules, today)) for row in rows]
        todo = [(row, decision) for row, decision in decided if decision]
        if not todo:
            continue
        async with db.write() as session:
            for row, decision in todo:
                if decision.step is RetentionStep.WARN:
                    counts["warned"] += await _warn(session, settings, row, decision, today)
                else:
                    enqueue(
                        session,
                        PURGE_JOB,
                        {"mailbox_id": row.id, "reason": decision.reason},
                        dedupe_key=f"{PURGE_JOB}:{row.id}:{today.isoformat()}",
                    )
                    counts["purges"] += 1


async def _warn(
    session: AsyncSession, settings: Settings, row: Any, decision: RetentionDecision, today: dt.date
) -> int:
    """Stamp the warning (once: a conditional UPDATE) and send it; 0 if another pass did it
    first."""
    stamped = await session.execute(
        update(Mailbox)
        .where(
            Mailbox.id == row.id,
            or_(Mailbox.retention_warned_on.is_(None), Mailbox.retention_warned_on < today),
        )
        .values(retention_warned_on=today)
        .execution_options(synchronize_session=False)
    )
    if not stamped.rowcount:  # type: ignore[attr-defined]
        return 0
    purge_on = decision.purge_on or today
    kind = decide_retention_notice(patient_account=row.patient_id is not None)
    if decision.channel is WarningChannel.PATIENT_NOTICE and kind is not None:
        notify_patient(session, PatientContact(row.patient_id, row.email, row.phone), kind, "/")
    else:
        await deliver(session, row.id, warning_message(settings, row.address, purge_on, today))
    record(
        session,
        "mailbox.retention_warned",
        actor_kind="system",
        actor=settings.hostname,
        patient_id=row.patient_id,
        target=row.address,
        source="retention",
        purge_on=purge_on.isoformat(),
        channel=decision.channel.value if decision.channel else "",
    )
    return 1


def warning_message(settings: Settings, address: str, purge_on: dt.date, today: dt.date) -> bytes:
    """The notice a professional finds in their INBOX: the date of the purge and how to keep the
    mail."""
    message = EmailMessage()
    message["From"] = settings.notifications.sender or f"ne-pas-repondre@{settings.domain}"
    message["To"] = address
    message["Subject"] = "Votre messagerie de santé n'est plus utilisée"
    message["Date"] = format_datetime(dt.datetime.combine(today, dt.time(), dt.UTC))
    message["Message-ID"] = (
        f"<retention-{today.isoformat()}-{address.replace('@', '.')}@{settings.hostname}>"
    )
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Cette boîte aux lettres n'a été utilisée par aucune connexion depuis près d'un an.\n\n"
        f"Sans connexion (messagerie, IMAP ou envoi) d'ici le {purge_on:%d/%m/%Y}, ses "
        f"messages seront "
        f"supprimés, comme le prévoient les règles de conservation de l'opérateur. Une seule "
        f"connexion "
        f"suffit à les conserver.\n\nLes documents versés au DMP ne sont pas concernés.\n"
    )
    return bytes(message)


# -- the purge -----------------------------------------------------------------------------


async def purge_mailbox(
    db: Database, settings: Settings, mailbox_id: int, now: dt.datetime
) -> dict[str, int] | None:
    """Purge one mailbox if the policy still says so today; what went, or None when it was kept."""
    today = now.date()
    async with db.read() as session:
        row = (await session.execute(_FACTS.where(Mailbox.id == mailbox_id))).first()
    if row is None:
        return None
    decision = decide_retention(_facts(row), rules_of(settings), today)
    if decision.step is not RetentionStep.PURGE:
        return None  # used again since the daily pass, or already purged
    removed = messages = 0
    while True:
        async with db.write() as session:
            batch = (
                await session.execute(
                    select(FolderEntry.folder_id, FolderEntry.uid, FolderEntry.message_id)
                    .join(Folder, Folder.id == FolderEntry.folder_id)
                    .where(Folder.mailbox_id == mailbox_id)
                    .order_by(FolderEntry.id)
                    .limit(settings.retention.batch)
                )
            ).all()
            if not batch:
                break
            by_folder: dict[int, list[int]] = {}
            for folder_id, uid, _ in batch:
                by_folder.setdefault(folder_id, []).append(uid)
            before = await _count_messages(session, [m for _, _, m in batch])
            for folder_id, uids in by_folder.items():
                removed += len(
                    await remove_entries(session, mailbox_id, folder_id, uids, only_deleted=False)
                )
            await delete_unreferenced_messages(
                session, [m for _, _, m in batch], keep_conversations=False
            )
            messages += before - await _count_messages(session, [m for _, _, m in batch])
    async with db.write() as session:
        await session.execute(
            update(Mailbox)
            .where(Mailbox.id == mailbox_id)
            .values(retention_purged_on=today)
            .execution_options(synchronize_session=False)
        )
        record(
            session,
            "mailbox.purged",
            actor_kind="system",
            actor=settings.hostname,
            patient_id=row.patient_id,
            target=row.address,
            source="retention",
            reason=decision.reason,
            entries=removed,
            messages=messages,
        )
    log.info(
        "retention: purged mailbox %s (%s): %s entries, %s stored messages",
        row.address,
        decision.reason,
        removed,
        messages,
    )
    return {"entries": removed, "messages": messages}


async def _count_messages(session: AsyncSession, ids: list[int]) -> int:
    found = await session.execute(
        select(StoredMessage.id).where(StoredMessage.id.in_(sorted(set(ids))))
    )
    return len(found.all())


# -- jobs ----------------------------------------------------------------------------------


async def schedule_daily(
    db: Database, when: dt.datetime | None = None, *, running: int | None = None
) -> bool:
    """Queue the daily pass for ``when`` (default now) unless one is already queued; False if it
    was (``mss.jobs.schedule_daily``)."""
    return await schedule_daily_job(db, DAILY_JOB, when, running=running)


async def _daily_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    settings = ctx.services.settings
    now = _clock(ctx)()
    counts = await run_daily(ctx.db, settings, now)
    if any(counts.values()):
        log.info(
            "retention: %s mailboxes warned, %s purges queued", counts["warned"], counts["purges"]
        )
    if not payload.get("once"):
        await schedule_daily(ctx.db, now + dt.timedelta(days=1), running=ctx.job_id)


async def _purge_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    await purge_mailbox(ctx.db, ctx.services.settings, int(payload["mailbox_id"]), _clock(ctx)())


def register_jobs(runner: JobRunner) -> None:
    """Register ``retention.daily`` (payload ``{}``; ``{"once": true}`` does not queue the next
    day) and ``retention.purge``."""
    runner.register(DAILY_JOB, _daily_job)
    runner.register(PURGE_JOB, _purge_job, ordered=False)
