"""The one login throttle: back-off and temporary locks after failed logins, for every protocol.

SMTP AUTH, IMAP LOGIN/AUTHENTICATE, the portal's password and code steps and
the document API's HTTP Basic all ask ``decide_login_attempt`` before they
check a password, and ``decide_after_failure`` when it was wrong. The
failures are counted (``mss.login_throttle``, one table every process sees)
in three series:

- the account from this source address (the *pair*): locked for
  ``lock_minutes`` after ``lock_after`` failures. Strict: while it lasts,
  even the right password is refused from that address;
- the source address, whatever the account: locked the same way after
  ``source_lock_after`` failures (password spraying). Higher, because a
  hospital's workstations may share one address;
- the account, whatever the source: never locked, only slowed down. After
  ``free_failures`` every attempt must wait ``back_off_seconds``, doubled at
  each further failure, at most ``max_back_off_seconds``.

So someone who knows a patient's INS can lock that account only from their
own address: from another address the owner waits at most
``max_back_off_seconds`` (an attempt made during the wait is refused, not
counted, and the password is not checked). A refused attempt counts for
nothing, so a lock ends ``lock_minutes`` after the failure that set it.
A series is forgotten after ``lock_minutes`` without a failure; a success
clears the account's series and the pair's, never the source's (a sprayer
who knows one password must not reset its count with it).

Nothing here does I/O: the facts are the counts, the answer a decision with
its reason and a sentence in English (SMTP, IMAP, the API) and French (the
portal).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mss.policy.decision import ACCOUNT_LOCKED, SOURCE_LOCKED, Decision, allow, refuse

PARIS = ZoneInfo("Europe/Paris")

ALLOWED = "ok"  # the reason of every allowing decision
BACK_OFF = "back_off"
WRONG_CREDENTIALS = "wrong_credentials"


@dataclass(frozen=True)
class LoginRules:
    """The thresholds (``[login_throttle]`` in mss.toml)."""

    lock_after: int = 5
    source_lock_after: int = 30
    lock_minutes: float = 15.0
    free_failures: int = 1
    back_off_seconds: float = 2.0
    max_back_off_seconds: float = 60.0

    @property
    def lock_duration(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.lock_minutes)

    def forget_before(self, now: dt.datetime) -> dt.datetime:
        """A series whose last failure is this old or older is over."""
        return now - self.lock_duration

    def back_off(self, failures: int) -> dt.timedelta:
        """The wait after ``failures`` failures of an account: 0, then 2, 4, 8 s... at most the
        cap."""
        if failures <= self.free_failures or self.back_off_seconds <= 0:
            return dt.timedelta(0)
        seconds = self.back_off_seconds * 2 ** min(failures - self.free_failures - 1, 30)
        return dt.timedelta(seconds=min(seconds, self.max_back_off_seconds))


@dataclass(frozen=True)
class FailureSeries:
    """One counter as stored: failures in the series and when the last one happened."""

    failures: int = 0
    last_at: dt.datetime | None = None

    def current(self, rules: LoginRules, now: dt.datetime) -> FailureSeries:
        """The series as it stands at ``now`` (empty once forgotten)."""
        if self.last_at is None or self.last_at <= rules.forget_before(now):
            return NO_FAILURES
        return self


NO_FAILURES = FailureSeries()


@dataclass(frozen=True)
class LoginFailures:
    """The recent failures that concern one attempt: its account, its source, and the pair."""

    account: FailureSeries = NO_FAILURES
    pair: FailureSeries = NO_FAILURES
    source: FailureSeries = NO_FAILURES

    def current(self, rules: LoginRules, now: dt.datetime) -> LoginFailures:
        return LoginFailures(
            self.account.current(rules, now),
            self.pair.current(rules, now),
            self.source.current(rules, now),
        )

    @property
    def any(self) -> bool:
        return bool(self.account.failures or self.pair.failures or self.source.failures)


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%H:%M UTC")


def paris_time(when: dt.datetime) -> str:
    """``14 h 05``: the time of day as the portal shows it."""
    return when.astimezone(PARIS).strftime("%H h %M")


def _minutes(rules: LoginRules) -> str:
    return f"{rules.lock_minutes:g}"


def _locked(reason: str, until: dt.datetime, rules: LoginRules, *, began: bool = False) -> Decision:
    minutes = _minutes(rules)
    if reason == ACCOUNT_LOCKED:
        english = (
            f"Too many failed logins: this account is locked from your address for {minutes} "
            f"minutes, until {_utc(until)}; try again then"
        )
        french = (
            f"Trop d'essais infructueux : par sécurité, la connexion à ce compte depuis "
            f"votre adresse "
            f"est bloquée pendant {minutes} minutes, jusqu'à {paris_time(until)} (heure de Paris). "
            "Vous pourrez réessayer ensuite."
        )
    else:
        english = (
            f"Too many failed logins from your address: logins from it are locked for {minutes} "
            f"minutes, until {_utc(until)}; try again then"
        )
        french = (
            f"Trop d'essais infructueux depuis votre adresse : par sécurité, les connexions depuis "
            f"cette adresse sont bloquées pendant {minutes} minutes, jusqu'à {paris_time(until)} "
            "(heure de Paris). Vous pourrez réessayer ensuite."
        )
    return refuse(535, "5.7.8", english, french, reason=reason, retry_at=until, lock_began=began)


def _wait_fr(seconds: int) -> str:
    return f"Par sécurité, attendez {seconds} secondes avant de réessayer."


def _back_off(until: dt.datetime, now: dt.datetime) -> Decision:
    seconds = max(1, int((until - now).total_seconds() + 0.999))
    return refuse(
        454,
        "4.7.0",
        f"Too many failed logins for this account: wait {seconds} seconds before trying again",
        _wait_fr(seconds),
        reason=BACK_OFF,
        retry_at=until,
    )


def decide_login_attempt(failures: LoginFailures, rules: LoginRules, now: dt.datetime) -> Decision:
    """May a password be checked now? Allowed, locked until T (strict), or wait N seconds."""
    recent = failures.current(rules, now)
    for reason, series, threshold in (
        (ACCOUNT_LOCKED, recent.pair, rules.lock_after),
        (SOURCE_LOCKED, recent.source, rules.source_lock_after),
    ):
        if threshold > 0 and series.failures >= threshold and series.last_at is not None:
            return _locked(reason, series.last_at + rules.lock_duration, rules)
    if recent.account.last_at is not None:
        ready = recent.account.last_at + rules.back_off(recent.account.failures)
        if ready > now:
            return _back_off(ready, now)
    return allow(
        "Authentication successful", "Connexion autorisée", smtp_code=235, enhanced_status="2.7.0"
    )


def decide_after_failure(after: LoginFailures, rules: LoginRules, now: dt.datetime) -> Decision:
    """The answer to a wrong password, given the counts that include it: the lock it set, or advice.

    Each failure is counted by one atomic statement, so exactly one reaches the pair's
    threshold: ``lock_began`` is true once per lock, whatever the number of processes.
    """
    if 0 < rules.lock_after <= after.pair.failures:
        return _locked(
            ACCOUNT_LOCKED,
            now + rules.lock_duration,
            rules,
            began=after.pair.failures == rules.lock_after,
        )
    if 0 < rules.source_lock_after <= after.source.failures:
        return _locked(SOURCE_LOCKED, now + rules.lock_duration, rules)
    left = max(rules.lock_after - after.pair.failures, 0)
    minutes = _minutes(rules)
    english = "Authentication credentials invalid"
    french = (
        f"Il vous reste {left} essai{'s' if left > 1 else ''} avant un blocage temporaire "
        f"de {minutes} minutes."
    )
    wait = rules.back_off(after.account.failures)
    if wait:
        seconds = max(1, int(wait.total_seconds() + 0.999))
        english += f"; wait {seconds} seconds before trying again"
        french += " " + _wait_fr(seconds)
    return refuse(
        535,
        "5.7.8",
        english,
        french,
        reason=WRONG_CREDENTIALS,
        retry_at=now + wait if wait else None,
    )
