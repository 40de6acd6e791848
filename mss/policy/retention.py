"""When a mailbox left unused is warned, when its messages are purged, and who is told.

As MSSanté operators practise it: a mailbox (a patient's or a professional's) with
no activity for ``warn_after_days`` (335, about 11 months) gets one warning; at
``purge_after_days`` (365) its messages are purged, but never less than
``purge_after_days - warn_after_days`` days after that warning (a hub that was off
still gives the full notice). Activity is a login (IMAP, SMTP submission, portal),
recorded at most once a day (``mailboxes.last_active_on``); a mailbox never used
counts from its creation, and after a purge from the purge (what arrives later is
purged a cycle on). Any activity after the warning cancels it: the next warning
comes only after another full period without one.

A patient account closed for good (``patients.closed_at``) is purged
``closed_account_days`` after its closing, without a warning (nobody is reachable
any more). The DMP is not concerned: it keeps its own rules.

Pure functions: the caller loads ``RetentionFacts`` and passes the day.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class RetentionStep(str, enum.Enum):
    KEEP = "keep"
    WARN = "warn"
    PURGE = "purge"


class WarningChannel(str, enum.Enum):
    PATIENT_NOTICE = "patient_notice"  # the patient's e-mail/SMS (mss.notify), no medical content
    INBOX = (
        "inbox"  # a notice delivered into the mailbox's INBOX (professionals have no other contact)
    )


@dataclass(frozen=True)
class RetentionRules:
    warn_after_days: int = 335
    purge_after_days: int = 365
    closed_account_days: int = 90

    @property
    def notice_days(self) -> int:
        """The least time between a warning and the purge it announces."""
        return self.purge_after_days - self.warn_after_days


def rules_problem(rules: RetentionRules) -> str | None:
    """What is wrong with the settings, in a sentence; None when they can be applied."""
    if rules.warn_after_days < 1:
        return f"retention.warn_after_days must be 1 or more, got {rules.warn_after_days}"
    if rules.purge_after_days <= rules.warn_after_days:
        return (
            f"retention.purge_after_days ({rules.purge_after_days}) must be more than "
            f"retention.warn_after_days ({rules.warn_after_days}): the warning comes before "
            f"the purge"
        )
    if rules.closed_account_days < 0:
        return f"retention.closed_account_days must be 0 or more, got {rules.closed_account_days}"
    return None


@dataclass(frozen=True)
class RetentionFacts:
    """One mailbox as retention sees it (days, not times: activity is recorded once a day)."""

    mailbox_id: int
    is_patient: bool
    created_on: dt.date
    last_active_on: dt.date | None = None
    warned_on: dt.date | None = None
    purged_on: dt.date | None = None
    account_closed_on: dt.date | None = None  # a patient account closed for good

    @property
    def idle_since(self) -> dt.date:
        """The day the current idle period began: last activity, creation, or the last purge."""
        days = [self.last_active_on or self.created_on]
        if self.purged_on is not None:
            days.append(self.purged_on)
        return max(days)


@dataclass(frozen=True)
class RetentionDecision:
    step: RetentionStep
    reason: str  # "inactive" or "closed_account" for a purge; a sentence for the log otherwise
    channel: WarningChannel | None = None  # for a warning
    purge_on: dt.date | None = None  # for a warning: the first day the purge may happen

    def __bool__(self) -> bool:
        return self.step is not RetentionStep.KEEP


def decide_retention(
    facts: RetentionFacts, rules: RetentionRules, today: dt.date
) -> RetentionDecision:
    """Warn, purge or keep this mailbox today."""
    if facts.account_closed_on is not None:
        if facts.purged_on is not None and facts.purged_on >= facts.account_closed_on:
            return RetentionDecision(RetentionStep.KEEP, "closed account already purged")
        if today >= facts.account_closed_on + dt.timedelta(days=rules.closed_account_days):
            return RetentionDecision(RetentionStep.PURGE, "closed_account")
        return RetentionDecision(RetentionStep.KEEP, "closed account within its retention")
    since = facts.idle_since
    idle = (today - since).days
    warned = (
        facts.warned_on is not None and facts.warned_on > since
    )  # activity since cancels a warning
    if warned:
        assert facts.warned_on is not None
        notice_over = today >= facts.warned_on + dt.timedelta(days=rules.notice_days)
        if idle >= rules.purge_after_days and notice_over:
            return RetentionDecision(RetentionStep.PURGE, "inactive")
        return RetentionDecision(RetentionStep.KEEP, "warned, notice running")
    if idle >= rules.warn_after_days:
        channel = WarningChannel.PATIENT_NOTICE if facts.is_patient else WarningChannel.INBOX
        purge_on = max(
            since + dt.timedelta(days=rules.purge_after_days),
            today + dt.timedelta(days=rules.notice_days),
        )
        return RetentionDecision(RetentionStep.WARN, "inactive", channel, purge_on)
    return RetentionDecision(RetentionStep.KEEP, "active")


def activity_needs_recording(last_active_on: dt.date | None, today: dt.date) -> bool:
    """Whether a login today must write the mailbox's activity day (once a day at most)."""
    return last_active_on is None or last_active_on < today
