"""IMAP LOGIN and AUTHENTICATE PLAIN: the hub's one login rule, in IMAP's words; per-user
connection limits.

The login itself is ``mss.logins.log_in``, the one SMTP AUTH uses (the login
throttle shared by every protocol and process, the directory's password check,
``mss.policy.session.decide_password_login``: no patient mailbox, only active
ones); this module says its result in IMAP's words and reads the folder names
in the same session.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import Database
from mss.login_throttle import LoginThrottle
from mss.logins import log_in
from mss.mailbox.imap.wire import ImapError
from mss.mailbox.models import Folder

WRONG_CREDENTIALS = "wrong address or password"


@dataclass
class LoggedIn:
    mailbox_id: int
    address: str
    folders: frozenset[str] = frozenset()  # the mailbox's folder names, read with it


_FOLDER_NAMES = select(Folder.name).where(Folder.mailbox_id == bindparam("mailbox_id"))


async def _folder_names(session: AsyncSession, mailbox_id: int) -> frozenset[str]:
    return frozenset((await session.scalars(_FOLDER_NAMES, {"mailbox_id": mailbox_id})).all())


async def authenticate(
    db: Database, throttle: LoginThrottle, ip: str, address: str, password: str
) -> LoggedIn:
    """Check the credentials; raises ImapError with a code and a sentence the user can act on.

    While the throttle refuses, the password is not checked: the right one is refused too,
    with the lock's or the wait's sentence (RFC 5530 AUTHENTICATIONFAILED).
    """
    login = await log_in(db, throttle, address.strip(), password, ip, also=_folder_names)
    if login.throttled:
        raise ImapError(login.decision.sentence, "AUTHENTICATIONFAILED")
    if not login.password_ok:
        sentence = login.decision.sentence if login.locked else WRONG_CREDENTIALS
        raise ImapError(sentence, "AUTHENTICATIONFAILED")
    if not login.allowed:
        raise ImapError(login.decision.sentence, "AUTHORIZATIONFAILED")
    assert login.mailbox is not None
    return LoggedIn(login.mailbox.id, login.mailbox.address, login.also or frozenset())


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
