"""The hub's one mailbox login by address and password: SMTP AUTH, IMAP LOGIN, the document
API's HTTP Basic.

The sequence: the login throttle shared by every protocol and process
(``mss.policy.login``: while it refuses, the password is not checked, so even the
right one is refused with the lock's or the wait's sentence), the mailbox
(``find_mailbox``), its password (``check_mailbox_password_async``: argon2 off the
loop, an unknown address costs the same work), the rule of who may log in
(``mss.policy.session.decide_password_login``), the throttle's count, a rehash
when the stored hash is outdated, and the day's activity for retention.

It returns a ``Login`` and never raises a protocol's error: each protocol says the
result in its own words (535 5.7.8, NO [AUTHENTICATIONFAILED]...). It sits above
``mss.directory`` and outside ``mss.mailbox``: a caller that wants more read in the
same session (IMAP's folder names, SMTP's patient) passes ``also``; the document API
logs in inside its request's transaction (``session``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import Database, utcnow
from mss.directory.activity import note_activity
from mss.directory.facts import facts_of
from mss.directory.models import Mailbox, Patient
from mss.directory.store import check_mailbox_password_async, find_mailbox, rehash_mailbox_password
from mss.login_throttle import (
    Attempt,
    LoginThrottle,
    clear_failures,
    mailbox_account,
    read_failures,
)
from mss.policy import Decision, MailboxFacts, decide_password_login
from mss.policy.login import decide_login_attempt

T = TypeVar("T")
X = TypeVar("X")

Step = Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]]
Also = Callable[[AsyncSession, int], Awaitable[X]]  # the session and the mailbox's id


async def _as_is(step: Coroutine[Any, Any, T]) -> T:
    return await step


@dataclass(frozen=True)
class Login(Generic[X]):
    """What a login attempt gave.

    ``decision`` is the throttle's (``throttled``: the password was not checked), the lock's
    (``locked``: this wrong password set it), or ``decide_password_login``'s. ``facts`` and
    ``also`` are set when a mailbox was found (``also``: what the caller's callback read),
    and ``mailbox``, the directory's row. ``attempt`` is what a wrong password counts against
    (the caller of a ``session`` login counts it once its transaction is over).
    """

    decision: Decision
    attempt: Attempt
    facts: MailboxFacts | None = None
    mailbox: Mailbox | None = None
    also: X | None = None
    throttled: bool = False
    password_ok: bool = False
    locked: bool = False
    needs_rehash: bool = False  # a ``session`` login: the caller rehashes the password

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


async def log_in(
    db: Database,
    throttle: LoginThrottle,
    address: str,
    password: str,
    source: str,
    *,
    also: Also[X] | None = None,
    with_patient: bool = False,
    step: Step = _as_is,
    session: AsyncSession | None = None,
) -> Login[X]:
    """One login by address and password from ``source`` (the client's IP address).

    The read (throttle, mailbox, ``also``) is one session, inline on SQLite; every database
    step after it goes through ``step`` (SMTP: within its database timeout). ``with_patient``
    reads the mailbox's patient for the facts (``facts_of``).

    With ``session`` (the document API's request transaction) every statement runs in it and
    nothing is written outside it: a wrong password is not counted here (``Login.attempt``:
    the caller counts it after its transaction, which is rolled back), a success clears the
    throttle's series in it, the caller rehashes when its own rule lets the mailbox in
    (``Login.needs_rehash``), and no activity is noted.
    """
    attempt, now, rules = Attempt(mailbox_account(address), source), utcnow(), throttle.rules

    async def read(session: AsyncSession) -> tuple[Any, Mailbox | None, Patient | None, X | None]:
        failures = await read_failures(session, attempt)
        if not decide_login_attempt(failures, rules, now):
            return failures, None, None, None
        mailbox = await find_mailbox(session, address)
        if mailbox is None:
            return failures, None, None, None
        patient = (
            await session.get(Patient, mailbox.patient_id)
            if with_patient and mailbox.patient_id
            else None
        )
        extra = await also(session, mailbox.id) if also is not None else None
        return failures, mailbox, patient, extra

    async def lookup() -> tuple[Any, Mailbox | None, Patient | None, X | None]:
        async with db.read() as own:
            return await read(own)

    if session is not None:
        failures, mailbox, patient, extra = await read(session)
    else:
        with db.inline():  # a few indexed reads in one session: no thread hop each on SQLite
            failures, mailbox, patient, extra = await step(lookup())
    gate = decide_login_attempt(failures, rules, now)
    if not gate:
        return Login(gate, attempt, throttled=True)
    check = await check_mailbox_password_async(mailbox, password)
    ok = mailbox is not None and bool(check)
    facts = facts_of(mailbox, patient) if mailbox is not None else None
    decision = decide_password_login(facts, ok)
    if not ok:
        if session is not None:
            return Login(decision, attempt, facts, mailbox, extra)
        after = await step(throttle.failed(attempt, now))
        refusal = after if after.locked else decision
        return Login(refusal, attempt, facts, mailbox, extra, locked=after.locked)
    assert mailbox is not None
    if session is not None:
        if failures.any:
            await clear_failures(session, attempt, rules, now)
    elif decision.allowed:
        await step(throttle.succeeded(attempt, failures, now))
        if check.needs_rehash:
            await step(_rehash(db, mailbox, password))
        await step(note_activity(db, mailbox.id, mailbox.last_active_on, now.date()))
    return Login(
        decision,
        attempt,
        facts,
        mailbox,
        extra,
        password_ok=True,
        needs_rehash=session is not None and check.needs_rehash,
    )


async def _rehash(db: Database, mailbox: Mailbox, password: str) -> None:
    async with db.write() as session:
        await rehash_mailbox_password(session, mailbox, password)
