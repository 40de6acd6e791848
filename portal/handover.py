"""The hand-over of a minor's space on their 16th birthday (``[portal] handover_age``).

A daily job (``patients.handover_daily``, queued at the hub's start like the retention
pass, then by itself for the next day) reads every minor some guardian holds:

- ``handover_notice_days`` (30) before the birthday, each guardian is told, once, with the
  date in French (``patients.handover_notice``, one job per guardian, e-mail or SMS as the
  guardian chose; no medical content, not even the child's name);
- on the birthday, in one transaction: the guardianships end (an audit event on the
  minor's and on each guardian's history), the history of the documents hidden from legal
  representatives joins the new holder's own (``dmp_bridge.access.release_to_new_holder``;
  the consent rules already show those documents to the patient once no guardian acts),
  and the new holder gets an activation code: the letter (``portal.letters``, in
  ``<data_dir>/letters`` as ``mss patients letters`` writes them) and the e-mail when one
  is on file (``mss.patients.email_activation_code``). A code is stored only if its letter
  was written.

Every decision (is it the day, is it time to tell, may a code be given) is in
``mss.policy.lifecycle``. Tests inject the day through ``Services.clock``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from dmp_bridge.access import release_to_new_holder
from mss.audit import has_event
from mss.config import Settings, portal_url
from mss.db import Database, utcnow
from mss.directory.models import PatientState
from mss.directory.store import patient_by_id
from mss.jobs import JobContext, JobRunner, enqueue, schedule_daily
from mss.notify import send_email, sms_provider
from mss.patients import (
    SYSTEM,
    audit,
    email_activation_code,
    end_guardianships,
    guardians_of,
    held_minors,
    issue_activation_code,
    needs_activation_code,
    reissue_activation_code,
)
from mss.policy.lifecycle import (
    decide_code_reissue,
    decide_handover,
    decide_handover_notice,
    french_date,
    handover_day,
)
from mss.policy.notice_recipients import NoticeContact, decide_channels
from mss.services import Services
from portal.letters import write_letter

log = logging.getLogger("portal.handover")

DAILY_JOB = "patients.handover_daily"
NOTICE_JOB = "patients.handover_notice"
NOTICE_ACTION = "account_handover_notice"  # the audit action, also looked up


def notice_text(day: dt.date, age: int) -> tuple[str, str]:
    """Subject and sentence of the guardians' notice (no name, no medical content)."""
    return (
        "Remise prochaine de l'espace santé d'un enfant",
        f"L'espace santé d'un enfant dont vous êtes le représentant légal lui sera remis le "
        f"{french_date(day)}, à ses {age} ans : à partir de cette date, il sera le seul à y "
        "accéder et vous n'y aurez plus accès. Il recevra son propre code d'activation.",
    )


async def run_daily(db: Database, settings: Settings, now: dt.datetime) -> dict[str, int]:
    """Tell the guardians of the minors whose hand-over comes, hand over those whose day came."""
    age, notice_days = settings.portal.handover_age, settings.portal.handover_notice_days
    today = now.date()
    counts = {"noticed": 0, "handed_over": 0}
    async with db.read() as session:
        minors = await held_minors(session)
    for minor, guardians in minors:
        if decide_handover(minor.birth_date, bool(guardians), today, age):
            counts["handed_over"] += await hand_over(db, settings, minor.id, now)
            continue
        if not decide_handover_notice(minor.birth_date, bool(guardians), today, age, notice_days):
            continue
        assert minor.birth_date is not None
        day = handover_day(minor.birth_date, age)
        async with db.write() as session:
            if await has_event(session, minor.id, NOTICE_ACTION, f"handover:{day.isoformat()}"):
                continue
            for guardian in guardians:
                enqueue(
                    session,
                    NOTICE_JOB,
                    {"guardian_id": guardian.id, "day": day.isoformat(), "age": age},
                    dedupe_key=f"{NOTICE_JOB}:{minor.id}:{guardian.id}:{day.isoformat()}",
                )
            audit(
                session,
                "account_handover_notice",
                SYSTEM,
                minor,
                target=f"handover:{day.isoformat()}",
                day=day.isoformat(),
                guardians=len(guardians),
            )
            counts["noticed"] += 1
    return counts


async def hand_over(db: Database, settings: Settings, minor_id: int, now: dt.datetime) -> int:
    """End the guardians' access to the minor's space and give the minor a code; 1 when done,
    0 when it was not due (or done meanwhile)."""
    async with db.write() as session:
        minor = await patient_by_id(session, minor_id, for_update=True)
        if minor is None:
            return 0
        held = await guardians_of(session, minor.id)
        age = settings.portal.handover_age
        if not decide_handover(minor.birth_date, bool(held), now.date(), age):
            return 0
        await end_guardianships(session, minor.id)
        for guardian in held:
            for history in (minor, guardian):
                audit(
                    session,
                    "account_guardianship_ended",
                    SYSTEM,
                    history,
                    reason="handover",
                    guardian=guardian.ins,
                    minor=minor.ins,
                )
        documents = await release_to_new_holder(session, minor)
        code = None
        if needs_activation_code(minor):
            code = await issue_activation_code(session, settings, minor, now)
        elif decide_code_reissue(minor.state, minor.password_hash is not None):
            code = await reissue_activation_code(session, minor, "handover", now)
        audit(
            session,
            "account_handed_over",
            SYSTEM,
            minor,
            age=age,
            guardians=len(held),
            documents=documents,
            code="issued" if code else "none",
        )
        if code is not None:
            folder = settings.data_path / "letters"
            await write_letter(folder, minor, code, portal_url(settings))
            await email_activation_code(session, settings, minor, code)
    log.info("handover: the space of patient %s is now their own", minor_id)
    return 1


async def send_notice(
    db: Database, settings: Settings, services: Services, payload: dict[str, Any]
) -> None:
    """Tell one guardian the date of the hand-over, on the channels they chose."""
    async with db.read() as session:
        guardian = await patient_by_id(session, int(payload["guardian_id"]))
    if guardian is None or guardian.state in (PatientState.OPPOSED, PatientState.CLOSED):
        return  # nobody to tell any more
    subject, sentence = notice_text(dt.date.fromisoformat(payload["day"]), int(payload["age"]))
    contact = NoticeContact(
        guardian.id, guardian.email, guardian.phone, guardian.notify_channels, guardian.birth_date
    )
    for channel in decide_channels(contact):
        if channel == "email" and guardian.email:
            await send_email(settings, guardian.email, subject, sentence)
        elif channel == "sms" and guardian.phone:
            await sms_provider(settings, services).send(guardian.phone, sentence)


async def _daily_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    now = (ctx.services.clock or utcnow)()
    counts = await run_daily(ctx.db, ctx.services.settings, now)
    if any(counts.values()):
        log.info(
            "handover: %s notices, %s spaces handed over", counts["noticed"], counts["handed_over"]
        )
    if not payload.get("once"):
        await schedule_daily(ctx.db, DAILY_JOB, now + dt.timedelta(days=1), running=ctx.job_id)


async def _notice_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    await send_notice(ctx.db, ctx.services.settings, ctx.services, payload)


def register_jobs(runner: JobRunner) -> None:
    """Register ``patients.handover_daily`` (payload ``{}``; ``{"once": true}`` does not queue
    the next day) and ``patients.handover_notice``."""
    runner.register(DAILY_JOB, _daily_job)
    runner.register(NOTICE_JOB, _notice_job, ordered=False)
