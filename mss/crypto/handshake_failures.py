"""Failed TLS handshakes: one WARNING line each (listener, peer, reason), a few per minute per
listener.

Anyone can fail a handshake (garbage bytes on a TLS port, a scanner, a client
that distrusts our CA), so a failure is not an error of the hub: no ERROR
record, no traceback. Each listener logs at most ``PER_MINUTE`` lines a
minute; past that the failures are counted and one summary line says how many
were not logged. Where they come from:

- implicit TLS (SMTP 2465, IMAP 993, HTTPS): the listeners accept plain TCP and
  await each handshake themselves (``mss.crypto.implicit_tls``, so that the context,
  hence the ticket keys, can rotate), and call ``report`` with the listener and the
  peer when it fails (asyncio's ``ssl=`` servers dropped it silently outside their
  debug mode);
- STARTTLS (SMTP, IMAP): the listener calls ``report`` where the handshake is awaited;
- anything else asyncio hands to the loop's exception handler as a failed handshake
  (a server still made with ``ssl=``, in asyncio's debug mode): ``install`` sets that
  handler and keeps asyncio's DEBUG traceback of a failed handshake out of the log.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mss.tls")

PER_MINUTE = 10
WINDOW_SECONDS = 60.0


def describe(error: BaseException | None) -> str:
    """The reason of a failed handshake in a few words (OpenSSL's reason code when there is one)."""
    if error is None:
        return "connection closed during the handshake"
    reason = getattr(error, "verify_message", None) or getattr(error, "reason", None)
    return str(reason) if reason else (str(error) or type(error).__name__)


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else "a peer asyncio does not name"


@dataclass
class _Window:
    started: float
    logged: int = 0
    unlogged: int = 0


class HandshakeFailures:
    """The rate-limited log of failed handshakes, one window of ``WINDOW_SECONDS`` per listener."""

    def __init__(
        self, per_minute: int = PER_MINUTE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def report(self, listener: str, peer: Any, error: BaseException | None) -> None:
        """One failed handshake on ``listener`` from ``peer`` (an address tuple or text)."""
        now = self.clock()
        window = self._windows.get(listener)
        if window is None or now - window.started >= WINDOW_SECONDS:
            if window is not None:
                self._summarise(listener, window)
            window = self._windows[listener] = _Window(now)
        if window.logged < self.per_minute:
            window.logged += 1
            log.warning(
                "TLS handshake failed on %s from %s: %s",
                listener,
                _peer_text(peer),
                describe(error),
            )
            return
        if window.unlogged == 0:
            self._summary_later(listener, window)
        window.unlogged += 1

    def flush(self) -> None:
        """Write the summary of every window that counted failures without logging them."""
        for listener, window in list(self._windows.items()):
            self._summarise(listener, window)

    def _summarise(self, listener: str, window: _Window) -> None:
        if window.unlogged:
            log.warning(
                "TLS handshake failed %d more times on %s within a minute (not logged one by one)",
                window.unlogged,
                listener,
            )
            window.unlogged = 0

    def _summary_later(self, listener: str, window: _Window) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # the next failure after the window writes it
        delay = max(0.0, window.started + WINDOW_SECONDS - self.clock())
        loop.call_later(delay, self._summarise, listener, window)


FAILURES = HandshakeFailures()


def report(listener: str, peer: Any, error: BaseException | None) -> None:
    """One failed handshake, into the process's log of failures."""
    FAILURES.report(listener, peer, error)


def _is_handshake_failure(context: Mapping[str, Any]) -> bool:
    error = context.get("exception")
    if isinstance(error, ssl.SSLError):
        return True
    # debug mode: a client that reset or stalled its handshake on an implicit-TLS port
    return isinstance(error, OSError) and "incoming connection" in str(context.get("message", ""))


def _address(context: Mapping[str, Any], name: str) -> Any:
    for key in ("transport", "protocol"):
        holder = context.get(key)
        get_extra_info = getattr(holder, "get_extra_info", None) or getattr(
            holder, "_get_extra_info", None
        )
        if get_extra_info is not None:
            try:
                found = get_extra_info(name)
            except Exception:  # noqa: BLE001 - a half-closed transport may know nothing
                found = None
            if found:
                return found
    return None


class _AsyncioHandshakeTraceback(logging.Filter):
    """asyncio's own DEBUG record of a failed handshake, with its traceback: the WARNING line says
    it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, ssl.SSLError) and "handshake" in record.getMessage())


_ASYNCIO_FILTER = _AsyncioHandshakeTraceback()


def install(loop: asyncio.AbstractEventLoop, listeners: Mapping[int, str] | None = None) -> None:
    """Route the loop's failed handshakes to ``report``; ``listeners`` names the local ports."""
    names = dict(listeners or {})
    previous = loop.get_exception_handler()
    previous = getattr(previous, "replaced", previous)  # installed again (a restart): replace ours

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _is_handshake_failure(context):
            local = _address(context, "sockname")
            port = local[1] if isinstance(local, tuple) and len(local) >= 2 else None
            listener = (
                names.get(port, f"port {port}") if port is not None else "an implicit-TLS port"
            )
            report(listener, _address(context, "peername"), context.get("exception"))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.replaced = previous  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
    asyncio_log = logging.getLogger("asyncio")
    if _ASYNCIO_FILTER not in asyncio_log.filters:
        asyncio_log.addFilter(_ASYNCIO_FILTER)
