"""Implicit TLS with a context per connection (``mss.crypto.implicit_tls``): the hand-over from
the handshake to the listener's protocol, and the log of failed handshakes.

The client here drives its TLS by hand (``ssl.MemoryBIO``) so that it can send its Finished
and its first application bytes in one TCP write: the server's SSL layer then delivers those
bytes before the handshake task has handed the connection over, and they must still reach the
protocol, after its ``connection_made``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path

import pytest

from mss.config import Settings
from mss.crypto import handshake_failures, tls
from mss.crypto.implicit_tls import ImplicitTls
from tests.fixtures_pki import DevPki


class Recorder(asyncio.Protocol):
    """What the listener's protocol saw, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.received = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        der = transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        self.events.append(("made", transport.get_extra_info("sslcontext") is not None))
        self.events.append(("peer certificate", der))

    def data_received(self, data: bytes) -> None:
        self.events.append(("data", data))
        self.received.set()


@pytest.fixture
def hub_settings(tmp_path: Path, dev_pki: DevPki) -> Settings:
    settings = Settings()
    settings.data_dir = str(tmp_path / "var")
    return dev_pki.install(settings)


def _finished_with_data(port: int, context: ssl.SSLContext, data: bytes) -> None:
    """A TLS 1.3 handshake whose last flight (Finished) carries ``data`` in the same write."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        while True:
            try:
                tls_object.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    raw.sendall(outgoing.read())
                chunk = raw.recv(65536)
                if not chunk:
                    raise ConnectionError("closed during the handshake") from None
                incoming.write(chunk)
        tls_object.write(data)
        raw.sendall(outgoing.read())  # the client's Finished and the data, one write
        raw.settimeout(2)
        try:
            raw.recv(65536)  # session tickets; the server says nothing else
        except TimeoutError:
            pass


async def test_bytes_sent_with_the_finished_reach_the_protocol_after_connection_made(
    hub_settings: Settings,
) -> None:
    recorder = Recorder()
    contexts = tls.RotatingServerContext.fixed(tls.server_context(hub_settings))
    server = await asyncio.get_running_loop().create_server(
        ImplicitTls(lambda: recorder, contexts, listener="test listener"), "127.0.0.1", 0
    )
    try:
        port = server.sockets[0].getsockname()[1]
        client = tls.client_context(hub_settings)
        client.minimum_version = ssl.TLSVersion.TLSv1_3
        sending = asyncio.create_task(
            asyncio.to_thread(_finished_with_data, port, client, b"a1 CAPABILITY\r\n")
        )
        await asyncio.wait_for(recorder.received.wait(), 10)
        await sending
    finally:
        server.close()
        await server.wait_closed()
    assert recorder.events == [
        ("made", True),
        ("peer certificate", None),
        ("data", b"a1 CAPABILITY\r\n"),
    ]


async def test_a_peer_that_hangs_up_during_the_handshake_is_one_warning_line(
    hub_settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handshake_failures, "FAILURES", handshake_failures.HandshakeFailures())
    made: list[asyncio.Protocol] = []

    def factory() -> asyncio.Protocol:
        made.append(Recorder())
        return made[-1]

    contexts = tls.RotatingServerContext.fixed(tls.server_context(hub_settings))
    server = await asyncio.get_running_loop().create_server(
        ImplicitTls(factory, contexts, listener="test listener"), "127.0.0.1", 0
    )
    caplog.set_level(logging.WARNING, logger="mss.tls")
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(100):
            if caplog.records:
                break
            await asyncio.sleep(0.05)
    finally:
        server.close()
        await server.wait_closed()
    [line] = [r.getMessage() for r in caplog.records if r.name == "mss.tls"]
    assert line.startswith("TLS handshake failed on test listener from 127.0.0.1:"), line
    assert made == []  # the listener's protocol is made only after a handshake
