"""IMAP LOGIN and AUTHENTICATE PLAIN: the hub's one login rule, in IMAP's words; per-user
connection limits.

Who may log in is ``mss.policy.session.decide_password_login`` (the rule SMTP
AUTH uses: no patient mailbox, only active ones) and when a password may be
checked at all is the login throttle shared by every protocol and process
(``mss.policy.login``, ``mss.login_throttle``). The mailbox and its password
are checked by the directory (``find_mailbox``,
``check_mailbox_password_async``), the one place the hub verifies passwords.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from mss.db import Database, utcnow
from mss.directory.activity import note_activity
from mss.directory.store import check_mailbox_password_async, find_mailbox, rehash_mailbox_password
from mss.login_throttle import Attempt, LoginThrottle, mailbox_account, read_failures
from mss.mailbox.imap.wire import ImapError
from mss.mailbox.models import Folder
from mss.policy import MailboxFacts, decide_password_login
from mss.policy.login import decide_login_attempt

WRONG_CREDENTIALS = "wrong address or password"


@dataclass
class LoggedIn:
    mailbox_id: int
    address: str
    folders: frozenset[str] = frozenset()  # the mailbox's folder names, read with it


_FOLDER_NAMES = select(Folder.name).where(Folder.mailbox_id == bindparam("mailbox_id"))


async def authenticate(
    db: Database, throttle: LoginThrottle, ip: str, address: str, password: str
) -> LoggedIn:
    """Check the credentials; raises ImapError with a code and a sentence the user can act on.

    While the throttle refuses, the password is not checked: the right one is refused too,
    with the lock's or the wait's sentence (RFC 5530 AUTHENTICATIONFAILED).
    """
    attempt, now, rules = Attempt(mailbox_account(address), ip), utcnow(), throttle.rules
    folders: frozenset[str] = frozenset()
    with db.inline():  # three indexed reads in one session: no thread hop each on SQLite
        async with db.read() as session:
            failures = await read_failures(session, attempt)
            gate = decide_login_attempt(failures, rules, now)
            mailbox = await find_mailbox(session, address.strip()) if gate else None
            if mailbox is not None:
                folders = frozenset(
                    (await session.scalars(_FOLDER_NAMES, {"mailbox_id": mailbox.id})).all()
                )
    if not gate:
        raise ImapError(gate.sentence, "AUTHENTICATIONFAILED")
    check = await check_mailbox_password_async(mailbox, password)
    ok = mailbox is not None and bool(check)
    facts = (
        MailboxFacts(
            id=mailbox.id, address=mailbox.address.lower(), kind=mailbox.kind, state=mailbox.state
        )
        if mailbox is not None
        else None
    )
    decision = decide_password_login(facts, ok)
    if not ok:
        after = await throttle.failed(attempt, now)
        raise ImapError(
            after.sentence if after.locked else WRONG_CREDENTIALS, "AUTHENTICATIONFAILED"
        )
    if not decision:
        raise ImapError(decision.sentence, "AUTHORIZATIONFAILED")
    assert mailbox is not None
    await throttle.succeeded(attempt, failures, now)
    if check.needs_rehash:
        async with db.write() as session:
            await rehash_mailbox_password(session, mailbox, password)
    await note_activity(db, mailbox.id, mailbox.last_active_on, now.date())  # retention: once a day
    return LoggedIn(mailbox.id, mailbox.address, folders)


class ConnectionCounter:
    """Open connections per key (client address, or mailbox) against a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[object, int] = defaultdict(int)

    def acquire(self, key: object) -> bool:
        if self._open[key] >= self.limit:
            return False
        self._open[key] += 1
        return True

    def release(self, key: object) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
