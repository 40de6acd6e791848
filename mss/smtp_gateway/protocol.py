"""Our aiosmtpd SMTP subclass: the session stage (TLS, AUTH, connection limits).

It fixes aiosmtpd 1.4.6's traps for this hub:

- implicit TLS (port 2465): aiosmtpd only counts STARTTLS as TLS, so it
  would hide AUTH and answer 538; we tell it the session is encrypted;
- a failed AUTH must return ``AuthResult(success=False, handled=False)``
  with a message, or no reply is ever sent and the client hangs;
- credentials are checked with argon2 in a worker thread, not on the loop, once the
  login throttle allows it (``mss.policy.login``: 535 5.7.8 while locked, 454 4.7.0 while waiting);
- an APP mailbox presenting its registered client certificate is logged in
  without a password.

SMTP smuggling: DATA ends at ``<CRLF>.<CRLF>`` only (``data_phase``, read in chunks), so a
bare ``<LF>.<LF>`` or ``<CR>.<CR>`` never ends DATA (tests/smtp/test_smuggling.py); the
content stage then refuses any bare CR or LF.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
import zlib
from base64 import b64decode
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, TLSSetupException, syntax

from mss import log_format
from mss.crypto import handshake_failures
from mss.errors import DatabaseUnavailable
from mss.policy import (
    MailboxFacts,
    PeerCertificateFacts,
    decide_certificate_login,
)
from mss.services import ConnectionCounter
from mss.smtp_gateway.data_phase import ChunkedDataSMTP
from mss.smtp_gateway.dsn_params import (
    MAIL_PARAMETERS,
    RCPT_PARAMETERS,
    DsnParameters,
    MalformedParameter,
    take_dsn_parameters,
)
from mss.smtp_gateway.envelope import Transaction
from mss.smtp_gateway.replies import reply_bytes
from mss.smtp_gateway.tls import describe_tls, peer_certificate

log = logging.getLogger("mss.smtp")

TEMPORARY_AUTH_FAILURE = "454 4.7.0 Temporary authentication failure, please try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The usual MAIL FROM / RCPT TO path: <dot-atom@host name>, nothing quoted, no comment, no route.
SIMPLE_PATH = re.compile(rf"<({_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})*)>")


@dataclass(frozen=True)
class Listener:
    """One listening port's role."""

    name: str  # submission, submission_tls, smtp_relay
    implicit_tls: bool = False

    @property
    def is_relay(self) -> bool:
        return self.name == "smtp_relay"


class ConnectionLimiter:
    """Open connections per client IP address, shared by every listener of a hub process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def acquire(self, ip: str) -> bool:
        if self.open[ip] >= self.limit:
            return False
        self.open[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]


class SharedConnectionLimiter:
    """Open connections per client IP address, counted across the hub's SMTP processes.

    With ``[listeners] smtp_processes`` above 1 the kernel spreads connections over
    processes listening on the same ports (SO_REUSEPORT), so each process's own count
    would let a client open the limit in every one. Here each process counts its own
    connections in its row of a shared array, and ``acquire`` adds up every row under
    one lock. An address is counted in one of ``buckets`` cells (CRC-32 of the address):
    two addresses sharing a cell share the limit, which only ever refuses earlier.
    A restarted process starts from an empty row (``reset``).
    """

    buckets = 65536

    def __init__(
        self, limit: int, processes: int, *, state: tuple[Any, Any] | None = None, index: int = 0
    ) -> None:
        import multiprocessing

        self.limit = limit
        self.processes = processes
        self.index = index
        if state is None:
            context = multiprocessing.get_context("spawn")
            state = (context.Array("i", processes * self.buckets, lock=False), context.Lock())
        self.counts: Any = state[0]  # the shared ctypes int Array (lock=False)
        self.lock: Any = state[1]  # the multiprocessing Lock that guards it

    def for_process(self, index: int) -> SharedConnectionLimiter:
        """The same shared counts, as seen by process ``index`` (picklable: passed to a spawned
        child)."""
        return SharedConnectionLimiter(
            self.limit, self.processes, state=(self.counts, self.lock), index=index
        )

    def _cell(self, ip: str) -> int:
        return zlib.crc32(ip.encode()) % self.buckets

    def open_in(self, index: int) -> int:
        """How many connections process ``index`` holds."""
        with self.lock:
            start = index * self.buckets
            return sum(self.counts[start : start + self.buckets])

    def acquire(self, ip: str) -> bool:
        cell = self._cell(ip)
        with self.lock:
            if (
                sum(self.counts[p * self.buckets + cell] for p in range(self.processes))
                >= self.limit
            ):
                return False
            self.counts[self.index * self.buckets + cell] += 1
        return True

    def release(self, ip: str) -> None:
        at = self.index * self.buckets + self._cell(ip)
        with self.lock:
            if self.counts[at] > 0:
                self.counts[at] -= 1

    def reset(self, index: int) -> None:
        """Forget the connections of process ``index`` (it exited: they are closed)."""
        with self.lock:
            start = index * self.buckets
            self.counts[start : start + self.buckets] = [0] * self.buckets


class HubSession(Session):
    """aiosmtpd's session plus what the hub established: the mailbox or the operator certificate."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.mailbox: MailboxFacts | None = None
        self.certificate: PeerCertificateFacts | None = None
        self.certificate_checked = False
        self.tls = ""

    # aiosmtpd assigns login_data after every AUTH and warns that it is deprecated; we keep
    # the authenticated mailbox in ``mailbox`` instead.
    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return None

    @login_data.setter
    def login_data(self, value: Any) -> None:
        pass


class HubEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.txn: Transaction | None = None
        self.dsn = DsnParameters()  # the RFC 3461 parameters of the MAIL or RCPT being read


class HubSMTP(ChunkedDataSMTP):
    """One SMTP connection to the hub."""

    def __init__(
        self,
        handler: Any,
        *,
        listener: Listener,
        gateway: Any,
        limiter: ConnectionCounter,
        tls_context: Any,
        **kwargs: Any,
    ) -> None:
        settings = gateway.settings
        # StreamReader's limit: the longest line (RFC 5321: 998 characters) plus CRLF.
        self.line_length_limit = settings.limits.max_line_length + 2
        super().__init__(
            handler,
            hostname=settings.hostname,
            ident="MSS hub",
            data_size_limit=settings.limits.max_message_size,
            tls_context=None if listener.implicit_tls else tls_context,
            require_starttls=not listener.implicit_tls,
            timeout=settings.limits.smtp_idle_timeout,
            auth_required=not listener.is_relay,
            auth_require_tls=True,
            auth_exclude_mechanism=["PLAIN", "LOGIN"] if listener.is_relay else [],
            **kwargs,
        )
        # Implicit TLS: every byte is already encrypted, so AUTH must not wait for STARTTLS.
        self._auth_require_tls = not listener.implicit_tls
        self.listener = listener
        self.gateway = gateway
        self.limiter = limiter
        self._client_ip: str | None = None
        self._counted = False  # this connection holds one place of its address's limit
        self._over_limit = False
        self._data_reply_utf8 = False

    async def push(self, status: str | bytes) -> None:
        """Every reply goes out here, encodable whatever its sentence says
        (``replies.reply_bytes``).

        aiosmtpd encodes a reply in strict ASCII without SMTPUTF8, so a refusal naming
        ``title=Médecin`` raised and the client got 451 instead of the 5xx.
        """
        if isinstance(status, str):
            utf8 = self.enable_SMTPUTF8 and (
                self._data_reply_utf8 or bool(self.envelope is not None and self.envelope.smtp_utf8)
            )
            self._data_reply_utf8 = False
            status = reply_bytes(status, utf8=utf8)[:-2]  # aiosmtpd adds the CRLF
        await super().push(status)

    def _set_post_data_state(self) -> None:
        # The envelope is reset before the reply to DATA, which still belongs to its transaction.
        self._data_reply_utf8 = bool(self.envelope is not None and self.envelope.smtp_utf8)
        super()._set_post_data_state()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's answer, without its RFC 5322 parser for a plain ``<local@domain>`` path.

        That parser took a tenth of a millisecond per address; any other form (quoted
        local part, comment, source route, address literal, null path) still goes to it.
        """
        match = SIMPLE_PATH.match(arg)
        rest = arg[match.end() :].lstrip(" \t") if match is not None else ""
        if match is None or rest.startswith("("):
            return self._rfc5322_path(arg)
        address = match.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    def _rfc5322_path(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's reading, which lets the email package's own errors through on some paths.

        ``<a@[``, ``<`` or a thousand nested comments raised IndexError, AttributeError or
        RecursionError there (tests/fuzz/test_fuzz_smtp.py); a control character in the
        address (NUL cannot even be stored in PostgreSQL) is a syntax error too.
        """
        try:
            address, rest = super()._getaddr(arg)
        except (IndexError, AttributeError, ValueError, RecursionError):
            return None, None
        if address is not None and _CONTROL.search(address):
            return None, None
        return address, rest

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        await self._with_dsn_parameters(arg, MAIL_PARAMETERS, super().smtp_MAIL)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        await self._with_dsn_parameters(arg, RCPT_PARAMETERS, super().smtp_RCPT)

    async def _with_dsn_parameters(
        self,
        arg: str | None,
        names: frozenset[str],
        command: Callable[[str | None], Awaitable[None]],
    ) -> None:
        """RFC 3461 parameters off the line (case kept) onto the envelope, the rest to aiosmtpd."""
        if (
            arg is not None
            and isinstance(self.envelope, HubEnvelope)
            and (self.session is not None and self.session.extended_smtp)
        ):
            try:
                self.envelope.dsn, arg = take_dsn_parameters(arg, names)
            except MalformedParameter as error:
                await self.push(f"501 5.5.4 {error}")
                return
        await command(arg)

    def _create_session(self) -> HubSession:
        return HubSession(self.loop)

    def _create_envelope(self) -> HubEnvelope:
        return HubEnvelope()

    def hub_session(self) -> HubSession:
        assert isinstance(self.session, HubSession)
        return self.session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if peer else "?"
            self._client_ip = ip
            if self.limiter.acquire(ip):
                self._counted = True
            else:
                self._over_limit = True
        self._note_tls()

    def _leave_limit(self) -> None:
        """This connection no longer counts against its address's limit (once)."""
        if self._counted:
            self._counted = False
            assert self._client_ip is not None
            self.limiter.release(self._client_ip)

    def connection_lost(self, error: Exception | None) -> None:
        self._leave_limit()
        super().connection_lost(error)

    @syntax("QUIT")
    async def smtp_QUIT(self, arg: str) -> None:
        # Before 221: a client that reads it may connect again at once, while this connection
        # still closes (TLS close_notify, connection_lost on a busy loop). Counting it until
        # connection_lost refused 6 of 40 new connections at the limit (issue 17).
        if not arg:
            self._leave_limit()
        await super().smtp_QUIT(arg)

    def _timeout_cb(self) -> None:
        self._leave_limit()  # the idle connection is being closed
        super()._timeout_cb()

    async def _handle_client(self) -> None:
        log_format.session_id.set(log_format.new_id())  # this connection's task: every line it logs
        try:
            if self._over_limit:
                await self.push(TOO_MANY_CONNECTIONS)
                assert self.transport is not None
                self.transport.close()
                return
            await super()._handle_client()
        finally:  # the session is over (QUIT, the client's EOF, a closing refusal)
            self._leave_limit()

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(
            error, TLSSetupException
        ):  # the client failed STARTTLS: one WARNING line, no traceback
            handshake_failures.report(
                f"SMTP {self.listener.name.removeprefix('smtp_')} (STARTTLS)",
                self.session.peer if self.session is not None else None,
                error.__cause__,
            )
            return "421 4.7.0 TLS handshake failed"  # not sent: aiosmtpd closes the connection
        return await super().handle_exception(error)

    def _ssl_object(self) -> Any:
        return self.transport.get_extra_info("ssl_object") if self.transport is not None else None

    def _note_tls(self) -> None:
        ssl_object = self._ssl_object()
        if ssl_object is not None and self.session is not None:
            self.hub_session().tls = describe_tls(ssl_object)
            self.hub_session().certificate = peer_certificate(ssl_object, self.gateway.trust)

    def encrypted(self) -> bool:
        return self._ssl_object() is not None

    async def check_auth_needed(self, caller_method: str) -> bool:
        """Before MAIL: an APP mailbox's registered client certificate logs it in."""
        session = self.hub_session()
        if (
            self._auth_required
            and not session.authenticated
            and not session.certificate_checked
            and self.encrypted()
        ):
            session.certificate_checked = True
            await self._certificate_login()
        return await super().check_auth_needed(caller_method)

    async def _certificate_login(self) -> None:
        session = self.hub_session()
        if session.certificate is None:
            return
        try:
            mailbox = await self.gateway.mailbox_for_certificate(session.certificate.sha256)
        except (DatabaseUnavailable, TimeoutError):
            return
        if mailbox is not None and decide_certificate_login(mailbox, session.certificate).allowed:
            session.authenticated = True
            session.mailbox = mailbox
            session.auth_data = mailbox
            log.info("%s logged in with its client certificate", mailbox.address)

    # -- AUTH: credentials are read here, checked off the loop, and every failure is answered
    # --------

    async def auth_PLAIN(self, _: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)  # challenge_auth answered 501
        else:
            try:
                blob = b64decode(args[1].encode(), validate=True)
            except binascii.Error:
                return AuthResult(
                    success=False, handled=False, message="501 5.5.2 Can't decode base64"
                )
        assert isinstance(blob, bytes)
        parts = blob.split(b"\0")
        if len(parts) != 3:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 Malformed PLAIN response"
            )
        return await self._password_login(parts[1], parts[2])

    async def auth_LOGIN(self, _: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth("Username:")
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = b64decode(args[1].encode(), validate=True)
            except binascii.Error:
                return AuthResult(
                    success=False, handled=False, message="501 5.5.2 Can't decode base64"
                )
        password = await self.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        assert isinstance(login, bytes) and isinstance(password, bytes)
        return await self._password_login(login, password)

    async def _password_login(self, login: bytes, password: bytes) -> AuthResult:
        try:
            mailbox, decision = await self.gateway.log_in(
                login.decode("utf-8", "replace"),
                password.decode("utf-8", "replace"),
                self._client_ip or "unknown",
            )
        except (DatabaseUnavailable, TimeoutError) as exc:
            log.warning("AUTH: %s", exc)
            return AuthResult(success=False, handled=False, message=TEMPORARY_AUTH_FAILURE)
        if not decision.allowed or mailbox is None:
            return AuthResult(success=False, handled=False, message=decision.smtp_reply)
        self.hub_session().mailbox = mailbox
        return AuthResult(success=True, handled=False, auth_data=mailbox)
