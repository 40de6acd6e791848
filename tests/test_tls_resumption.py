"""TLS session resumption on every TLS listener of ``mss serve``: a reconnecting client skips the
full handshake.

Each listener keeps one server context for all its connections, so OpenSSL's
session tickets (TLS 1.3, and TLS 1.2 where the client offers them) and its
session cache serve a client that presents its previous session. Python's
``ssl`` client shows it with ``session_reused``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mss.config import Settings
from mss.crypto import tls
from mss.db import Database
from mss.serve import Hub
from tests.fixtures_pki import DevPki

IMPLICIT = ("submission_tls", "imaps", "https")
STARTTLS = {
    "submission": (b"EHLO client.example\r\n", b"STARTTLS\r\n", b"220"),
    "imap": (b"", b"a1 STARTTLS\r\n", b"a1 OK"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def served(tmp_path: Path, database_url: str, dev_pki: DevPki) -> AsyncIterator[Settings]:
    settings = Settings()
    settings.data_dir = str(tmp_path / "var")
    settings.database_url = database_url
    dev_pki.install(settings)
    settings.listeners.workers = False
    for name in ("smtp_relay", *IMPLICIT, *STARTTLS):
        setattr(settings.ports, name, _free_port())
    hub = Hub(settings, Database(database_url))
    await hub.start()
    try:
        yield settings
    finally:
        await hub.stop()


def _read_until(sock: socket.socket | ssl.SSLSocket, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before {marker!r}: {seen!r}")
        seen += chunk
    return seen


POKE = {
    "https": b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    "submission": b"NOOP\r\n",
    "imap": b"a2 NOOP\r\n",
}  # the others greet first


def _connect(
    listener: str, port: int, context: ssl.SSLContext, session: ssl.SSLSession | None
) -> tuple[ssl.SSLSession | None, bool]:
    """One TLS connection (after STARTTLS where the listener wants it): its session, and was it
    resumed."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    starttls = STARTTLS.get(listener)
    if starttls is not None:
        hello, command, ready = starttls
        _read_until(raw, b"\r\n")
        if hello:
            raw.sendall(hello)
            _read_until(raw, b"250 ")
        raw.sendall(command)
        _read_until(raw, ready)
    with context.wrap_socket(raw, server_hostname="localhost", session=session) as conn:
        if listener in POKE:
            conn.sendall(POKE[listener])
        conn.recv(1)  # a reply: the TLS 1.3 tickets arrive before it
        return conn.session, conn.session_reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
async def test_every_tls_listener_resumes_a_session(
    served: Settings, version: ssl.TLSVersion
) -> None:
    context = tls.client_context(served)
    context.maximum_version = version
    for listener in (*IMPLICIT, *STARTTLS):
        port = getattr(served.ports, listener)
        first, reused = await asyncio.to_thread(_connect, listener, port, context, None)
        assert first is not None and not reused, listener
        _, reused = await asyncio.to_thread(_connect, listener, port, context, first)
        assert reused, f"{listener} ({version.name}) did not resume the session"
