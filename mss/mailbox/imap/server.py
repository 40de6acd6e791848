"""The IMAP listeners: STARTTLS port and implicit-TLS port, one :class:`Connection` per client.

The connection reads whole commands (lines and literals) under the
limits (line length, literal size, autologout), hands them to the
session, and writes the responses. It closes the connection after a
flood of bad commands, and the service refuses connections beyond the
per-address limit.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import re
import ssl
from typing import Any

from mss import log_format
from mss.config import Settings
from mss.crypto import handshake_failures
from mss.crypto.implicit_tls import ImplicitTls
from mss.crypto.tls import ServerContexts, rotating
from mss.db import Database
from mss.errors import DatabaseUnavailable
from mss.login_throttle import LoginThrottle
from mss.mailbox.imap.auth import ConnectionCounter
from mss.mailbox.imap.parser import TaggedBad, parse_command, tag_of
from mss.mailbox.imap.session import IdleTimeout, Session, State, _AlreadyAnswered
from mss.mailbox.imap.wire import BadCommand, ImapError
from mss.mailbox.notify import PostgresListener
from mss.metrics import hub_metrics

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024  # one command line, literals excluded
MAX_BAD_IN_A_ROW = 10
# Before login nothing needs more than a user name and a password: a literal is at most 4096
# bytes (RFC 7888 §5, LITERAL-), a whole command at most MAX_LINE bytes, literals included.
PRE_AUTH_MAX_LITERAL = 4096
PRE_AUTH_MAX_COMMAND = MAX_LINE
# asyncio gives every TLS connection a 256 KiB incoming buffer (SSLProtocol.max_size); an IMAP
# client idles for hours, so most of that is wasted. A TLS record is at most 16 KiB.
TLS_READ_BUFFER = 32 * 1024
_LITERAL_AT_END = re.compile(rb"\{(\d{1,12})(\+?)\}\r?\n$")


def shrink_tls_read_buffer(writer: asyncio.StreamWriter) -> None:
    """Give this connection's TLS layer a :data:`TLS_READ_BUFFER` incoming buffer instead of 256
    KiB.

    Only this IMAP connection's protocol object changes (an instance attribute, not the class),
    between two reads: asyncio asks for the buffer afresh before every ``recv_into``.
    """
    protocol = getattr(writer.transport, "_ssl_protocol", None)
    if not isinstance(protocol, asyncio.sslproto.SSLProtocol):
        return
    buffer = getattr(protocol, "_ssl_buffer", None)
    if isinstance(buffer, bytearray) and len(buffer) > TLS_READ_BUFFER:
        smaller = bytearray(TLS_READ_BUFFER)
        setattr(protocol, "max_size", TLS_READ_BUFFER)  # noqa: B010 - this instance only, not the class
        setattr(protocol, "_ssl_buffer", smaller)  # noqa: B010 - private attributes, checked above
        setattr(protocol, "_ssl_buffer_view", memoryview(smaller))  # noqa: B010


class ProtocolViolation(Exception):
    """The client broke framing (line too long, oversized non-synchronising literal): close."""

    def __init__(self, sentence: str, *, bye_only: bool = False) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.bye_only = bye_only

    def response(self) -> bytes:
        if self.bye_only:
            return f"* BYE {self.sentence}\r\n".encode()
        return f"* BAD {self.sentence}\r\n* BYE closing the connection\r\n".encode()


class LiteralTooBig(Exception):
    """A synchronising literal over the limit: refused before its continuation, so never sent."""

    def __init__(self, response: bytes, *, bad: bool) -> None:
        super().__init__(response)
        self.response = response
        self.bad = bad  # counts towards MAX_BAD_IN_A_ROW (before login); an APPEND too big does not


class ImapService:
    """What every connection shares: database, TLS context, limits, counters, change listener."""

    def __init__(self, settings: Settings, db: Database, contexts: ServerContexts) -> None:
        self.settings = settings
        self.db = db
        self.tls_contexts = rotating(contexts)  # each connection takes the current one
        self.limits = settings.limits
        self.throttle = LoginThrottle(db, settings, protocol="imap")
        self.per_user = ConnectionCounter(settings.limits.imap_connections_per_user)
        self.per_ip = ConnectionCounter(settings.limits.max_connections_per_ip)
        self.connections: set[Connection] = set()
        self.listener: PostgresListener | None = None
        self.keepalive = 120.0

    async def start_listener(self) -> None:
        if not self.db.is_sqlite:
            self.listener = PostgresListener(self.db.url)
            await self.listener.start()

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, tls: bool
    ) -> None:
        log_format.session_id.set(log_format.new_id())  # this connection's task: every line it logs
        connection = Connection(self, reader, writer, tls=tls)
        self.connections.add(connection)
        sessions = hub_metrics().imap_sessions.labels("imaps" if tls else "imap")
        sessions.inc()
        try:
            await connection.serve()
        finally:
            sessions.dec()
            self.connections.discard(connection)

    async def close(self) -> None:
        for connection in list(self.connections):
            connection.abort()
        if self.listener is not None:
            await self.listener.close()


class Connection:
    """One client: framing, limits and the I/O a session needs (the Channel protocol)."""

    def __init__(
        self,
        service: ImapService,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        tls: bool,
    ) -> None:
        self.service = service
        self.reader = reader
        self.writer = writer
        self.tls = tls
        self.starttls_possible = not tls
        if tls:
            shrink_tls_read_buffer(writer)
        peer = writer.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else "unknown"
        self._idle_read: asyncio.Future[bytes] | None = None
        self.session = Session(
            service.db,
            self,
            service.throttle,
            service.per_user,
            idle_timeout=service.limits.imap_idle_timeout,
            keepalive=service.keepalive,
        )

    # --- Channel ---

    def write(self, data: bytes) -> None:
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    async def read_continuation(self) -> bytes:
        return await asyncio.wait_for(self._readline(), self.service.limits.imap_autologout)

    async def start_tls(self) -> None:
        # Bytes pipelined after STARTTLS were sent in clear text: drop them (command injection).
        buffered = getattr(self.reader, "_buffer", None)
        if buffered:
            buffered.clear()
        try:
            await self.writer.start_tls(self.service.tls_contexts.current())
        except ssl.SSLError as exc:  # the client's doing: one WARNING line, no traceback
            handshake_failures.report(
                "IMAP (STARTTLS)", self.writer.get_extra_info("peername"), exc
            )
            raise ConnectionAbortedError("the TLS handshake failed") from None
        shrink_tls_read_buffer(self.writer)
        self.tls = True
        self.starttls_possible = False

    async def idle_wait(self, wake: asyncio.Event, keepalive: float) -> str:
        """Wait for DONE ("done"), a change ("wake") or the keep-alive period ("timeout")."""
        if self._idle_read is None:
            self._idle_read = asyncio.ensure_future(self._readline())
        waker = asyncio.ensure_future(wake.wait())
        waiting: set[asyncio.Future[Any]] = {self._idle_read, waker}
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waker.cancel()
        if self._idle_read in done:
            line = self._idle_read.result()
            self._idle_read = None
            if line.strip().upper() != b"DONE":
                raise BadCommand("expected DONE to end IDLE")
            return "done"
        return "wake" if waker in done else "timeout"

    # --- framing ---

    async def _readline(self) -> bytes:
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise ProtocolViolation("command line too long") from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProtocolViolation("connection closed in the middle of a command") from None
            raise ConnectionResetError("client went away") from None
        return line

    async def read_command(self) -> bytes:
        """One command with its literals, exactly as sent, within the limits of the session's
        state."""
        logged_in = self.session.state in (State.AUTHENTICATED, State.SELECTED)
        max_literal = self.service.limits.imap_max_literal if logged_in else PRE_AUTH_MAX_LITERAL
        max_command = MAX_LINE + max_literal if logged_in else PRE_AUTH_MAX_COMMAND
        data = bytearray()
        while True:
            line = await self._readline()
            data += line
            if len(data) > max_command:
                raise ProtocolViolation("command too long")
            match = _LITERAL_AT_END.search(line)
            if match is None:
                return bytes(data)
            size, non_sync = int(match.group(1)), bool(match.group(2))
            if size > max_literal and not logged_in:
                # RFC 7888 §4, §5: a non-synchronising literal's bytes are already on their way;
                # BYE and close rather than read them. A synchronising one is refused unsent.
                sentence = (
                    f"[TOOBIG] before login a literal is at most {PRE_AUTH_MAX_LITERAL} bytes"
                )
                if non_sync:
                    raise ProtocolViolation(sentence, bye_only=True)
                raise LiteralTooBig(f"{tag_of(bytes(data))} BAD {sentence}\r\n".encode(), bad=True)
            if size > max_literal:
                if non_sync:
                    raise ProtocolViolation(f"literal of {size} bytes is over the limit")
                raise LiteralTooBig(
                    f"{tag_of(bytes(data))} NO [TOOBIG] the message is larger than the limit "
                    f"of {max_literal} bytes\r\n".encode(),
                    bad=False,
                )
            if len(data) + size > max_command:
                raise ProtocolViolation("command too long")
            if not non_sync:
                self.write(b"+ Ready for literal data\r\n")
                await self.drain()
            data += await self.reader.readexactly(size)

    def abort(self) -> None:
        self.writer.close()

    async def serve(self) -> None:
        if not self.service.per_ip.acquire(self.peer_ip):
            self.write(b"* BYE [UNAVAILABLE] too many connections from your address\r\n")
            await self._close()
            return
        try:
            self.write(self.session.greeting())
            await self.drain()
            await self._loop()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            self.service.per_ip.release(self.peer_ip)
            await self.session.close()
            await self._close()

    async def _loop(self) -> None:
        limits = self.service.limits
        bad_in_a_row = 0
        while self.session.state != State.LOGOUT:
            try:
                data = await asyncio.wait_for(self.read_command(), limits.imap_autologout)
            except TimeoutError:
                self.write(b"* BYE Autologout: no command for too long\r\n")
                return
            except ProtocolViolation as exc:
                self.write(exc.response())
                return
            except LiteralTooBig as exc:
                self.write(exc.response)
                bad_in_a_row = bad_in_a_row + 1 if exc.bad else 0
                if bad_in_a_row >= MAX_BAD_IN_A_ROW:
                    self.write(b"* BYE too many invalid commands\r\n")
                    return
                await self.drain()
                continue
            response, bad = await self._execute(data)
            bad_in_a_row = bad_in_a_row + 1 if bad else 0
            self.write(response)
            if bad_in_a_row >= MAX_BAD_IN_A_ROW:
                self.write(b"* BYE too many invalid commands\r\n")
                return
            await self.drain()

    async def _execute(self, data: bytes) -> tuple[bytes, bool]:
        """Run one command: (the tagged response, whether it was a BAD)."""
        try:
            command = parse_command(data)
        except TaggedBad as exc:
            return exc.response(exc.tag), True
        except BadCommand as exc:
            return exc.response(tag_of(data)), True
        try:
            return await self.session.run(command), False
        except _AlreadyAnswered:
            return b"", False
        except IdleTimeout:
            self.session.state = State.LOGOUT
            return b"* BYE IDLE for too long, closing\r\n", False
        except BadCommand as exc:
            return exc.response(command.tag), True
        except ImapError as exc:
            return exc.response(command.tag), False
        except DatabaseUnavailable as exc:
            log.warning("IMAP %s failed: %s", command.name, exc)
            return (
                f"{command.tag} NO [UNAVAILABLE] the mail store is unavailable, "
                "try again later\r\n".encode(),
                False,
            )
        except (ConnectionError, asyncio.IncompleteReadError, ProtocolViolation):
            raise
        except Exception:
            log.exception("IMAP %s failed", command.name)
            return (
                f"{command.tag} NO [SERVERBUG] internal error, the administrator has the "
                f"details\r\n".encode(),
                False,
            )

    async def _close(self) -> None:
        if self._idle_read is not None:
            self._idle_read.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)


async def start_imap_servers(
    settings: Settings, db: Database, contexts: ServerContexts, *, reuse_port: bool = False
) -> list[asyncio.Server]:
    """Listen on the STARTTLS port (``ports.imap``) and the implicit-TLS port (``ports.imaps``).

    Port 0 picks a free port (see ``server.sockets[0].getsockname()``). Stop with
    :func:`stop_imap_servers`, which also closes open connections and the change listener.
    With ``reuse_port``, other processes may listen on the same ports (SO_REUSEPORT: the
    kernel spreads the connections; ``[listeners] imap_processes``).
    ``contexts`` is a ``RotatingServerContext`` (``mss serve``: new ticket keys every
    ``[tls] ticket_key_hours``) or one ``ssl.SSLContext`` kept for ever; both listeners take
    the current context per connection (``service.tls_contexts``).
    """
    service = ImapService(settings, db, contexts)
    await service.start_listener()
    servers: list[asyncio.Server] = []
    if settings.listeners.imap:
        servers.append(
            await asyncio.start_server(
                lambda r, w: service.handle(r, w, tls=False),
                settings.bind,
                settings.ports.imap,
                limit=MAX_LINE,
                reuse_port=reuse_port,
            )
        )
    if settings.listeners.imaps:
        loop = asyncio.get_running_loop()

        def imaps_protocol() -> asyncio.StreamReaderProtocol:  # what asyncio.start_server makes
            reader = asyncio.StreamReader(limit=MAX_LINE, loop=loop)
            return asyncio.StreamReaderProtocol(
                reader, lambda r, w: service.handle(r, w, tls=True), loop=loop
            )

        servers.append(
            await loop.create_server(
                ImplicitTls(imaps_protocol, service.tls_contexts, listener="IMAP (implicit TLS)"),
                settings.bind,
                settings.ports.imaps,
                reuse_port=reuse_port,
            )
        )
    for server in servers:
        server.mss_imap_service = service  # type: ignore[attr-defined]
    return servers


async def stop_imap_servers(servers: list[asyncio.Server]) -> None:
    """Stop listening, close every connection and the change listener."""
    services: list[Any] = []
    for server in servers:
        server.close()
        service = getattr(server, "mss_imap_service", None)
        if service is not None and service not in services:
            services.append(service)
    for service in services:
        await service.close()
    for server in servers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
