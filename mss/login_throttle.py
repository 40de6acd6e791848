"""Failed logins, counted in one table that every hub process sees (SQLite or PostgreSQL).

The rule is ``mss.policy.login``; this module keeps its facts. Each attempt
concerns three counters (rows of ``login_failures``): its account, its source
address, and the pair. Reading them is one statement (``read_failures``),
counting a failure one more (``count_failure``: an upsert that starts a new
series when the last failure is forgotten, and returns the new counts), and a
success one ``DELETE`` of the account's and the pair's rows, only when there
were any. Keys are hashes: a password typed in the login field is never
stored, and the rows say nothing of who exists.

Rows of forgotten series are purged when a success clears its own rows or a
failure sets a lock (an attacker who makes many rows soon sets one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import Integer, String, bindparam, case, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mss.config import Settings
from mss.db import Base, Database, UTCDateTime
from mss.metrics import hub_metrics
from mss.notify import Reachable, notify_patient
from mss.policy.decision import Decision
from mss.policy.login import (
    NO_FAILURES,
    FailureSeries,
    LoginFailures,
    LoginRules,
    decide_after_failure,
    decide_login_attempt,
)
from mss.policy.notices import decide_login_lock_notice

LOCK_NOTICE_LINK = "/connexion"


class LoginFailure(Base):
    """One counter: an account (``a:``), a source address (``s:``) or an account from one source
    (``p:``)."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(48), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


def rules_of(settings: Settings) -> LoginRules:
    """The throttle's thresholds from ``[login_throttle]``."""
    s = settings.login_throttle
    return LoginRules(
        lock_after=s.lock_after,
        source_lock_after=s.source_lock_after,
        lock_minutes=s.lock_minutes,
        free_failures=s.free_failures,
        back_off_seconds=s.back_off_seconds,
        max_back_off_seconds=s.max_back_off_seconds,
    )


def mailbox_account(address: str) -> str:
    """The account of a mailbox login (SMTP, IMAP, the document API), known or not."""
    return "mailbox:" + address.strip().lower()


def patient_account(patient_id: int) -> str:
    """A patient's portal account, whichever identifier (INS, e-mail) was typed."""
    return f"patient:{patient_id}"


def identifier_account(kind: str, identifier: str) -> str:
    """An identifier that names no account (or an activation by INS): counted like one."""
    return f"{kind}:" + " ".join(identifier.lower().split())


def _hashed(scope: str, text: str) -> str:
    return f"{scope}:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@dataclass(frozen=True)
class Attempt:
    """One login attempt: which account, from which source address."""

    account: str
    source: str

    @property
    def account_key(self) -> str:
        return _hashed("a", self.account)

    @property
    def pair_key(self) -> str:
        return _hashed("p", f"{self.account}\0{self.source}")

    @property
    def source_key(self) -> str:
        return _hashed("s", self.source)


_table = LoginFailure.__table__
_c = _table.c
_READ = select(_c.key, _c.failures, _c.last_failure_at).where(
    _c.key.in_(bindparam("keys", expanding=True))
)


def _failures(attempt: Attempt, rows: list[tuple[str, int, dt.datetime]]) -> LoginFailures:
    found = {key: FailureSeries(failures, last_at) for key, failures, last_at in rows}
    return LoginFailures(
        found.get(attempt.account_key, NO_FAILURES),
        found.get(attempt.pair_key, NO_FAILURES),
        found.get(attempt.source_key, NO_FAILURES),
    )


async def read_failures(session: AsyncSession, attempt: Attempt) -> LoginFailures:
    """The attempt's three counters, as stored (one statement)."""
    keys = [attempt.account_key, attempt.pair_key, attempt.source_key]
    rows = (await session.execute(_READ, {"keys": keys})).all()
    return _failures(attempt, list(rows))


async def count_failure(
    session: AsyncSession, attempt: Attempt, rules: LoginRules, now: dt.datetime
) -> LoginFailures:
    """Count one failure on the three counters (one statement); the counts that include it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(_table).values(
        [
            {"key": key, "failures": 1, "last_failure_at": now}
            for key in (attempt.account_key, attempt.pair_key, attempt.source_key)
        ]
    )
    forgotten = bindparam("forget_before", rules.forget_before(now), type_=UTCDateTime())
    counted = statement.on_conflict_do_update(
        index_elements=[_c.key],
        set_={
            "failures": case((_c.last_failure_at <= forgotten, 1), else_=_c.failures + 1),
            "last_failure_at": statement.excluded.last_failure_at,
        },
    ).returning(_c.key, _c.failures, _c.last_failure_at)
    rows = (await session.execute(counted)).all()
    return _failures(attempt, list(rows))


async def clear_failures(
    session: AsyncSession, attempt: Attempt, rules: LoginRules, now: dt.datetime
) -> None:
    """A success: the account's and the pair's series end (the source's goes on); forgotten rows
    go too."""
    await _delete(session, [attempt.account_key, attempt.pair_key], rules, now)


async def _delete(
    session: AsyncSession, keys: list[str], rules: LoginRules, now: dt.datetime
) -> None:
    await session.execute(
        delete(_table).where(
            or_(
                _c.key.in_(keys),
                _c.last_failure_at
                <= bindparam("forget_before", rules.forget_before(now), type_=UTCDateTime()),
            )
        )
    )


async def record_failed_login(
    session: AsyncSession,
    attempt: Attempt,
    rules: LoginRules,
    now: dt.datetime,
    *,
    patient: Reachable | None = None,
    protocol: str = "portal",
) -> Decision:
    """Count a wrong password or code in the caller's transaction; the answer to give.

    When this failure locks a patient's account, the patient's notification is queued
    in the same transaction. ``protocol`` (smtp, imap, api, portal) labels the metric.
    """
    after = decide_after_failure(await count_failure(session, attempt, rules, now), rules, now)
    hub_metrics().login_failures.labels(protocol, "locked" if after.locked else "refused").inc()
    if after.locked:
        await _delete(session, [], rules, now)  # a lock was just set: purge what is forgotten
    notice = decide_login_lock_notice(after, patient_account=patient is not None)
    if notice is not None and patient is not None:
        notify_patient(session, patient, notice, LOCK_NOTICE_LINK)
    return after


class LoginThrottle:
    """The throttle for the protocol layers: each step in its own short transaction."""

    def __init__(self, db: Database, settings: Settings, *, protocol: str) -> None:
        self.db = db
        self.settings = settings
        self.protocol = protocol  # smtp, imap, api: the label of mss_login_failures_total

    @property
    def rules(self) -> LoginRules:
        return rules_of(self.settings)  # read at each login: a changed setting applies at once

    async def check(self, attempt: Attempt, now: dt.datetime) -> tuple[Decision, LoginFailures]:
        """May the password be checked now; and the counts, for ``succeeded``."""
        async with self.db.read() as session:
            failures = await read_failures(session, attempt)
        return decide_login_attempt(failures, self.rules, now), failures

    async def failed(
        self, attempt: Attempt, now: dt.datetime, *, patient: Reachable | None = None
    ) -> Decision:
        async with self.db.write() as session:
            return await record_failed_login(
                session, attempt, self.rules, now, patient=patient, protocol=self.protocol
            )

    async def succeeded(self, attempt: Attempt, failures: LoginFailures, now: dt.datetime) -> None:
        """Clear the account's series, when ``check`` saw one (else nothing is written)."""
        if failures.account.failures or failures.pair.failures:
            async with self.db.write() as session:
                await clear_failures(session, attempt, self.rules, now)
