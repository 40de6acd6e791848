"""Who may log in over IMAP, with back-off after failures and per-user connection limits.

Only professional-side mailboxes (PER, ORG, APP, CAB) read mail with a
client; patients use the portal. The mailbox and its password are checked
by the directory (``find_mailbox``, ``check_mailbox_password_async``), the
one place the hub verifies passwords.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass

from mss.db import Database
from mss.directory.models import MailboxKind, MailboxState
from mss.directory.store import check_mailbox_password_async, find_mailbox
from mss.mailbox.imap.wire import ImapError

IMAP_KINDS = {MailboxKind.PER, MailboxKind.ORG, MailboxKind.APP, MailboxKind.CAB}


@dataclass
class LoggedIn:
    mailbox_id: int
    address: str


class LoginThrottle:
    """Failures per client address and per account; each failure doubles the wait (capped)."""

    def __init__(self, base_delay: float = 0.5, max_delay: float = 15.0, forget_after: float = 900.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._failures: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))

    def _count(self, key: str) -> int:
        count, when = self._failures[key]
        if count and time.monotonic() - when > self.forget_after:
            del self._failures[key]
            return 0
        return count

    def delay(self, ip: str, account: str) -> float:
        failures = max(self._count(f"ip:{ip}"), self._count(f"user:{account}"))
        return 0.0 if failures == 0 else min(self.max_delay, self.base_delay * 2 ** (failures - 1))

    def failed(self, ip: str, account: str) -> None:
        for key in (f"ip:{ip}", f"user:{account}"):
            count = self._count(key)
            self._failures[key] = (count + 1, time.monotonic())

    def succeeded(self, ip: str, account: str) -> None:
        self._failures.pop(f"ip:{ip}", None)
        self._failures.pop(f"user:{account}", None)


async def authenticate(db: Database, throttle: LoginThrottle, ip: str, address: str, password: str) -> LoggedIn:
    """Check the credentials; raises ImapError with a code and a sentence the user can act on."""
    address = address.strip().lower()
    wait = throttle.delay(ip, address)
    if wait:
        await asyncio.sleep(wait)  # every attempt after a failure waits, right or wrong
    async with db.read() as session:
        mailbox = await find_mailbox(session, address)
    if mailbox is None or not await check_mailbox_password_async(mailbox, password):
        throttle.failed(ip, address)
        raise ImapError("wrong address or password", "AUTHENTICATIONFAILED")
    if mailbox.kind not in IMAP_KINDS:
        raise ImapError("patient mailboxes are read in the patient portal, not with a mail client",
                        "AUTHORIZATIONFAILED")
    if mailbox.state != MailboxState.ACTIVE:
        raise ImapError(f"this mailbox is {mailbox.state.value}; contact your administrator",
                        "AUTHORIZATIONFAILED")
    throttle.succeeded(ip, address)
    return LoggedIn(mailbox.id, mailbox.address)


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
