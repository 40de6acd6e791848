"""What every part of a hub process shares: settings, trust store, job wake-up, test hooks.

``mss serve`` builds one ``Services`` at start-up (the SMTP and job child
processes, ``python -m mss.smtp_gateway`` and the test fixtures build theirs)
and passes it where the parts need it: the gateway, the job runner (each
handler reads ``ctx.services``), the HTTPS application. It is frozen: a part
cannot put something in it that another part then reads by a name no type
checker sees. What fills in while the process runs has a typed place of its
own: the ports the SMTP listeners bound (``smtp_ports``), the job workers to
wake (``jobs``, set once they exist), and the objects built on first use
(``built``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mss.config import Settings
from mss.stage_clock import StageClock

if TYPE_CHECKING:
    from mss.crypto.dkim import DkimKeyTable
    from mss.crypto.tls import RotatingServerContext
    from mss.crypto.trust import TrustStore

# The parts above this module (jobs, notifications, the gateway) import it, so it names what it
# holds of theirs by what it does (a protocol), never by importing them back.
JobFailedHook = Callable[[Any, Any, str], Awaitable[None]]  # (the Database, the ClaimedJob, why)


class SmsSender(Protocol):
    """Sends one text message to a phone number (``mss.notify.SmsProvider``)."""

    async def send(self, phone: str, text: str) -> None: ...


class ConnectionCounter(Protocol):
    """Open connections per client address (``mss.smtp_gateway`` 's limiters)."""

    def acquire(self, ip: str) -> bool: ...

    def release(self, ip: str) -> None: ...


class Waker(Protocol):
    """What delivery wakes when it commits jobs: the runner, the job process, or the hub."""

    def wake(self) -> None: ...


class JobWakeUp:
    """The job workers to wake, wherever they run; set once they exist (``use``)."""

    def __init__(self) -> None:
        self.target: Waker | None = None

    def use(self, target: Waker) -> None:
        self.target = target

    def wake(self) -> None:
        if self.target is not None:
            self.target.wake()


@dataclass
class Built:
    """Objects built on first use and kept for the process (``Services.built``)."""

    trust: TrustStore | None = None
    dkim_keys: DkimKeyTable | None = None
    encryption_keys: object | None = None  # mss.crypto.decryption.EncryptionKeys
    space_signers: object | None = None  # mss.crypto.space_signing.SpaceSigners
    portal_gateway: object | None = None  # the portal's mss.smtp_gateway.Gateway


@dataclass(frozen=True)
class Services:
    """The shared parts of one hub process, built once at start-up."""

    settings: Settings
    trust: TrustStore | None = None  # None: built from the settings on first use
    connection_limiter: ConnectionCounter | None = None  # None: one per process
    sms: SmsSender | None = None  # None: the one [notifications] names
    # -- hooks the tests (and benchmarks) set ----------------------------------------------
    clock: Callable[[], dt.datetime] | None = None  # retention's "today"
    portal_clock: object | None = None  # a portal.clock.Clock the test advances
    on_job_failed: JobFailedHook | None = None
    relay_routes: dict[str, tuple[str, int]] = field(default_factory=dict)  # domain -> host, port
    # -- filled in while the process runs -------------------------------------------------
    jobs: JobWakeUp = field(default_factory=JobWakeUp)
    smtp_ports: dict[str, int] = field(default_factory=dict)  # listener name -> bound port
    # listener name -> its TLS contexts (new ticket keys every [tls] ticket_key_hours)
    tls_contexts: dict[str, RotatingServerContext] = field(default_factory=dict)
    stage_clock: StageClock = field(default_factory=StageClock)
    built: Built = field(default_factory=Built)

    def trust_store(self) -> TrustStore:
        """The trust store: the one given, else one read from the settings once."""
        if self.trust is not None:
            return self.trust
        if self.built.trust is None:
            from mss.crypto.trust import TrustStore

            self.built.trust = TrustStore.from_settings(self.settings)
        return self.built.trust
