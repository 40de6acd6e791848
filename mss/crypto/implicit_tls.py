"""Implicit-TLS listeners whose context is chosen per connection, so its ticket keys can rotate.

``loop.create_server(ssl=context)`` binds one context to the listener for its whole life.
Here the listener accepts plain TCP; each connection does its handshake with
``contexts.current()`` through ``loop.start_tls`` (as asyncio streams' STARTTLS does), and the
TLS transport then goes to the real protocol (``connection_made``), which sees what ``ssl=``
gave it: ``peercert``, ``ssl_object``, ``sslcontext`` and ``peername`` in ``get_extra_info``.
Because the handshake is awaited here, a failed one is one rate-limited WARNING line
(``mss.crypto.handshake_failures``) naming the listener and the peer, where asyncio said
nothing outside its debug mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mss.crypto import handshake_failures
from mss.crypto.tls import RotatingServerContext

HANDSHAKE_TIMEOUT = 30.0


class ImplicitTls:
    """A protocol factory for ``loop.create_server``: TLS first, then ``factory()``'s protocol."""

    def __init__(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        contexts: RotatingServerContext,
        *,
        listener: str,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.factory = factory
        self.contexts = contexts
        self.listener = listener
        self.handshake_timeout = handshake_timeout
        self._handshakes: set[asyncio.Task[None]] = set()

    def __call__(self) -> asyncio.Protocol:
        return _Handshake(self)

    def close(self) -> None:
        """Abandon the handshakes under way (the listener is closing)."""
        for task in list(self._handshakes):
            task.cancel()

    def _start(self, transport: asyncio.Transport, holder: _Handshake) -> None:
        task = asyncio.get_running_loop().create_task(self._handshake(transport, holder))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, transport: asyncio.Transport, holder: _Handshake) -> None:
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        try:
            tls = await loop.start_tls(
                transport,
                holder,
                self.contexts.current(),
                server_side=True,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except OSError as exc:  # ssl.SSLError, a reset, the timeout (ConnectionAbortedError)
            transport.abort()
            handshake_failures.report(self.listener, peer, exc)
            return
        if tls is None:  # the peer closed during the handshake
            transport.abort()
            handshake_failures.report(self.listener, peer, None)
            return
        holder.hand_over(tls, self.factory())


class _Handshake(asyncio.Protocol):
    """One connection until its handshake is done; keeps what arrives before the hand-over.

    The SSL layer may deliver application data (a client's first request in the same flight
    as its Finished) before the task that awaited the handshake runs again.
    """

    def __init__(self, acceptor: ImplicitTls) -> None:
        self._acceptor = acceptor
        self._received: list[bytes] = []
        self._eof = False
        self._lost = False
        self._protocol: asyncio.BaseProtocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the ClientHello is for start_tls's SSL layer, not for us
        self._acceptor._start(transport, self)

    def data_received(self, data: bytes) -> None:
        self._received.append(data)

    def eof_received(self) -> bool:
        self._eof = True
        return True  # the real protocol decides, once it has the transport

    def connection_lost(self, exc: Exception | None) -> None:
        # The SSL layer schedules this call (call_soon) on the protocol it had then, which is
        # this one even when the hand-over came in between.
        if self._protocol is not None:
            self._protocol.connection_lost(exc)
        else:
            self._lost = True

    def hand_over(self, tls: asyncio.Transport, protocol: asyncio.BaseProtocol) -> None:
        """Give ``tls`` to ``protocol`` with whatever arrived since the handshake."""
        if self._lost:  # closed right after its handshake: nobody to tell
            return
        self._protocol = protocol
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        for data in self._received:
            _feed(protocol, data)
        self._received.clear()
        if self._eof and isinstance(protocol, asyncio.Protocol | asyncio.BufferedProtocol):
            if not protocol.eof_received():
                tls.close()


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            protocol.buffer_updated(size)
            view = view[size:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)
