"""TLS session resumption on every TLS listener of ``mss serve``: a reconnecting client skips the
full handshake.

Each listener takes its server context from a ``RotatingServerContext`` for every
connection, so OpenSSL's session tickets (TLS 1.3, and TLS 1.2 where the client offers
them) and its session cache serve a client that presents its previous session. Python's
``ssl`` client shows it with ``session_reused``. Every ``[tls] ticket_key_hours`` the
context is made again (new ticket keys): an older session then gets a full handshake.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mss.config import Settings, load_settings
from mss.crypto import tls
from mss.db import Database
from mss.errors import ConfigError
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
async def served(tmp_path: Path, database_url: str, dev_pki: DevPki) -> AsyncIterator[Hub]:
    settings = Settings()
    settings.data_dir = str(tmp_path / "var")
    settings.database_url = database_url
    dev_pki.install(settings)
    settings.listeners.workers = False
    # one process per port: each process's contexts hold their own ticket keys (mss.crypto.tls)
    settings.listeners.https_processes = 1
    for name in ("smtp_relay", *IMPLICIT, *STARTTLS):
        setattr(settings.ports, name, _free_port())
    hub = Hub(settings, Database(database_url))
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


@pytest.fixture
def served_settings(tmp_path: Path, dev_pki: DevPki) -> Settings:
    settings = Settings()
    settings.data_dir = str(tmp_path / "var")
    return dev_pki.install(settings)


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
async def test_every_tls_listener_resumes_a_session(served: Hub, version: ssl.TLSVersion) -> None:
    context = tls.client_context(served.settings)
    context.maximum_version = version
    for listener in (*IMPLICIT, *STARTTLS):
        port = getattr(served.settings.ports, listener)
        first, reused = await asyncio.to_thread(_connect, listener, port, context, None)
        assert first is not None and not reused, listener
        _, reused = await asyncio.to_thread(_connect, listener, port, context, first)
        assert reused, f"{listener} ({version.name}) did not resume the session"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
async def test_after_a_ticket_key_rotation_an_old_session_gets_a_full_handshake(
    served: Hub, version: ssl.TLSVersion
) -> None:
    """Rotation on each listener: the session made before it is not resumed, a new one is."""
    context = tls.client_context(served.settings)
    context.maximum_version = version
    rotators: dict[str, tls.RotatingServerContext] = served.services.tls_contexts
    assert set(rotators) >= {*IMPLICIT, *STARTTLS}
    for listener in (*IMPLICIT, *STARTTLS):
        port = getattr(served.settings.ports, listener)
        old, _ = await asyncio.to_thread(_connect, listener, port, context, None)
        before = rotators[listener].current()
        rotators[listener].rotate()
        assert rotators[listener].current() is not before, listener
        new, reused = await asyncio.to_thread(_connect, listener, port, context, old)
        assert not reused, f"{listener} ({version.name}) resumed a session of the old keys"
        assert new is not None
        _, reused = await asyncio.to_thread(_connect, listener, port, context, new)
        assert reused, f"{listener} ({version.name}) did not resume a session of the new keys"


async def test_the_rotation_follows_the_configured_lifetime(served: Hub) -> None:
    """``[tls] ticket_key_hours`` is each listener's lifetime; past it the next connection gets
    a new context."""
    rotators: dict[str, tls.RotatingServerContext] = served.services.tls_contexts
    hours = served.settings.tls.ticket_key_hours
    assert hours == 12.0
    for listener, rotator in rotators.items():
        assert rotator.lifetime == hours * 3600, listener


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rotating_context_is_made_again_once_its_lifetime_is_over(
    served_settings: Settings,
) -> None:
    clock = _Clock()
    rotator = tls.RotatingServerContext(
        lambda: tls.server_context(served_settings), 3600.0, clock=clock
    )
    first = rotator.current()
    clock.now += 3599.0
    assert rotator.current() is first
    clock.now += 1.0
    second = rotator.current()
    assert second is not first and rotator.rotations == 1
    clock.now += 3599.0
    assert rotator.current() is second


def test_a_context_that_cannot_be_made_again_is_kept_with_a_warning(
    served_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    clock = _Clock()
    rotator = tls.RotatingServerContext(
        lambda: tls.server_context(served_settings), 60.0, clock=clock
    )
    first = rotator.current()
    served_settings.tls.cert_file = str(Path(served_settings.data_dir) / "missing.pem")
    clock.now += 60.0
    with caplog.at_level(logging.WARNING, logger="mss.tls"):
        assert rotator.current() is first
    assert rotator.rotations == 0
    assert any(
        "session-ticket keys not rotated" in r.getMessage() and "missing.pem" in r.getMessage()
        for r in caplog.records
    ), caplog.records
    clock.now += 30.0
    assert rotator.current() is first  # the next attempt waits for the next lifetime


def test_the_ticket_key_lifetime_must_be_positive(tmp_path: Path) -> None:
    (tmp_path / "mss.toml").write_text("[tls]\nticket_key_hours = 0\n")
    with pytest.raises(ConfigError, match="tls.ticket_key_hours must be above 0"):
        load_settings(tmp_path / "mss.toml", env={})
