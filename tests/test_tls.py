"""TLS contexts on a real loopback server: the hub's certificate, TLS 1.2 floor, client
certificates."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mss.config import Settings
from mss.crypto import tls
from mss.crypto.trust import ChainCheck
from mss.errors import ConfigError
from tests.fixtures_pki import DevPki, Identity


@pytest.fixture
def hub_settings(tmp_path: Path, dev_pki: DevPki) -> Settings:
    settings = Settings()
    settings.data_dir = str(tmp_path / "var")
    return dev_pki.install(settings)


@dataclass
class EchoServer:
    """A TLS server that answers each connection with the peer certificate it saw."""

    port: int = 0
    seen: list[ChainCheck | None] = field(default_factory=list)


ServerStarter = Callable[[tls.ClientCertMode], Awaitable[EchoServer]]


@pytest.fixture
async def serve(hub_settings: Settings, dev_pki: DevPki) -> AsyncIterator[ServerStarter]:
    """Start loopback TLS servers with the hub's server context; closed after the test."""
    servers: list[asyncio.Server] = []

    async def start(mode: tls.ClientCertMode) -> EchoServer:
        state = EchoServer()
        trust = dev_pki.trust_for(hub_settings)
        context = tls.server_context(hub_settings, client_cert=mode, trust=trust)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            check = tls.verify_peer(writer, trust)
            state.seen.append(check)
            cert = tls.peer_certificate(writer)
            name = cert.subject.rfc4514_string() if cert else "no certificate"
            writer.write(f"{name}|{check.status if check else '-'}\n".encode())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def talk(port: int, context: ssl.SSLContext, hostname: str = "localhost") -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=hostname
    )
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_hub_certificate_and_tls_floor(serve: ServerStarter, hub_settings: Settings) -> None:
    server = await serve("none")
    context = tls.client_context(hub_settings)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=context, server_hostname="mss.localhost"
    )
    ssl_object = writer.get_extra_info("ssl_object")
    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    hub_cert = tls.peer_certificate(writer)
    assert hub_cert is not None and hub_cert.subject.rfc4514_string().startswith("CN=localhost")
    assert await reader.read() == b"no certificate|-\n"
    writer.close()

    # A TLS 1.1 client (openssl allowed to offer it) is refused by the server itself.
    out = await s_client(server.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert out.endswith(b"exit=1"), out.decode(errors="replace")
    assert b"no peer certificate available" in out and b"Cipher is (NONE)" in out
    assert len(server.seen) == 1  # only the first, TLS 1.2+ connection reached the handler


async def test_hostname_is_checked(serve: ServerStarter, hub_settings: Settings) -> None:
    server = await serve("none")
    assert await talk(server.port, tls.client_context(hub_settings), "127.0.0.1") != b""
    with pytest.raises(ssl.SSLCertVerificationError):
        await talk(server.port, tls.client_context(hub_settings), "evil.example")


async def test_required_client_certificate(
    serve: ServerStarter, hub_settings: Settings, dev_pki: DevPki, untrusted_pki: DevPki
) -> None:
    server = await serve("required")
    operator = dev_pki.issue_operator("other-operator.example.fr")
    with_cert = tls.client_context(hub_settings, cert=operator.cert_path, key=operator.key_path)
    answer = await talk(server.port, with_cert)
    assert answer == b"CN=other-operator.example.fr,OU=" + answer.split(b",OU=")[1]
    assert answer.endswith(b"|valid\n")

    for context in (
        tls.client_context(hub_settings),
        _client_with(hub_settings, untrusted_pki.issue_operator("rogue.example")),
    ):
        with pytest.raises((ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError)):
            if await talk(server.port, context) == b"":
                raise ConnectionResetError("closed without an answer")
    assert len(server.seen) == 1  # only the trusted operator reached the application


async def test_optional_client_certificate(
    serve: ServerStarter, hub_settings: Settings, dev_pki: DevPki
) -> None:
    server = await serve("optional")
    assert await talk(server.port, tls.client_context(hub_settings)) == b"no certificate|-\n"
    app = dev_pki.issue_client("convocations@mss.localhost")
    answer = await talk(server.port, _client_with(hub_settings, app))
    assert answer.startswith(b"CN=convocations@mss.localhost") and answer.endswith(b"|valid\n")


async def test_revoked_client_is_caught_after_the_handshake(
    serve: ServerStarter, hub_settings: Settings, dev_pki: DevPki
) -> None:
    revoked = dev_pki.issue_operator("revoked-operator.example.fr", label="revoked-operator")
    dev_pki.revoke(revoked)
    dev_pki.install(hub_settings)  # the hub's copy gets the new CRL
    server = await serve("required")
    answer = await talk(server.port, _client_with(hub_settings, revoked))
    assert answer.endswith(b"|revoked\n")
    check = server.seen[0]
    assert check is not None and "revoked" in check.reason


async def s_client(port: int, *args: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        "localhost",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(b""), 30)
    return out + f"\nexit={proc.returncode}".encode()


async def test_openssl_s_client_sees_a_valid_chain(serve: ServerStarter, dev_pki: DevPki) -> None:
    server = await serve("none")
    out = await s_client(
        server.port,
        "-verify_hostname",
        "localhost",
        "-CAfile",
        str(dev_pki.root_cert),
        "-verify_return_error",
        "-tls1_2",
    )
    assert out.endswith(b"exit=0"), out.decode(errors="replace")
    assert b"Verify return code: 0 (ok)" in out
    assert b"Protocol  : TLSv1.2" in out or b"Protocol: TLSv1.2" in out


def test_missing_server_certificate_is_one_sentence(tmp_path: Path) -> None:
    settings = Settings()
    settings.data_dir = str(tmp_path / "empty")
    with pytest.raises(ConfigError, match="mss pki init"):
        tls.server_context(settings)


def _client_with(settings: Settings, identity: Identity) -> ssl.SSLContext:
    return tls.client_context(settings, cert=identity.cert_path, key=identity.key_path)


GARBAGE = b"\x16\x03\x01\x00\x05not a TLS hello, just bytes\r\n" * 3


Prelude = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def smtp_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()  # 220 greeting
    writer.write(b"EHLO client.example\r\n")
    while (await reader.readline())[3:4] == b"-":
        pass
    writer.write(b"STARTTLS\r\n")
    assert (await reader.readline()).startswith(b"220")


async def imap_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()  # * OK greeting
    writer.write(b"a STARTTLS\r\n")
    assert (await reader.readline()).startswith(b"a OK")


async def _fail_handshake(port: int, prelude: Prelude | None = None) -> None:
    """Connect (and ask for STARTTLS), then send bytes that are no TLS handshake."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if prelude is not None:
            await prelude(reader, writer)
        writer.write(GARBAGE)
        await writer.drain()
        await asyncio.wait_for(reader.read(), 10)  # the hub closes the connection
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "asyncio-debug"])
async def test_failed_handshakes_are_a_few_warning_lines_without_traceback(
    settings: Settings,
    dev_pki: DevPki,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    debug: bool,
) -> None:
    """20 failed handshakes on every TLS listener of ``mss serve``: WARNING lines naming the
    listener and the peer, rate-limited, no ERROR.

    The implicit-TLS listeners do their handshakes themselves (``mss.crypto.implicit_tls``), so
    their failures are logged in the loop's ordinary mode as well as in asyncio's debug mode
    (``python -X dev``, PYTHONASYNCIODEBUG), where asyncio adds its own DEBUG traceback.
    """
    from mss.crypto import handshake_failures
    from mss.db import Database
    from mss.serve import Hub

    monkeypatch.setattr(handshake_failures, "FAILURES", handshake_failures.HandshakeFailures())
    asyncio.get_running_loop().set_debug(debug)
    settings = dev_pki.install(settings)
    for name in ("submission", "submission_tls", "smtp_relay", "imap", "imaps", "https"):
        setattr(settings.ports, name, 0)
    settings.listeners.workers = False
    hub = Hub(settings, Database(settings.effective_database_url))
    await hub.start()
    caplog.set_level(logging.DEBUG)
    try:
        smtp = hub.services.smtp_ports
        attempts = [
            (smtp["submission_tls"], None),
            (hub.bound["imaps"], None),
            (hub.bound["https"], None),
            (smtp["submission"], smtp_starttls),
            (hub.bound["imap"], imap_starttls),
        ]
        for port, prelude in attempts:
            for _ in range(20):
                await _fail_handshake(port, prelude)
        handshake_failures.FAILURES.flush()
    finally:
        await hub.stop()
    problems = [
        r for r in caplog.records if r.levelno >= logging.ERROR or (r.exc_info and r.exc_info[1])
    ]
    assert not problems, [(r.name, r.levelname, r.getMessage()) for r in problems]
    lines = [r.getMessage() for r in caplog.records if r.name == "mss.tls"]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "mss.tls")
    per_minute = handshake_failures.PER_MINUTE
    for listener, peer, failures in (
        ("SMTP submission (STARTTLS)", "127.0.0.1:", 20),
        ("IMAP (STARTTLS)", "127.0.0.1:", 20),
        ("SMTP submission (implicit TLS)", "127.0.0.1:", 20),
        ("IMAP (implicit TLS)", "127.0.0.1:", 20),
        ("HTTPS (portal and APIs)", "127.0.0.1:", 20),
    ):
        mine = [line for line in lines if f" on {listener}" in line]
        each = [
            line
            for line in mine
            if line.startswith(f"TLS handshake failed on {listener} from {peer}")
        ]
        assert len(each) == per_minute, mine
        assert mine[-1] == (
            f"TLS handshake failed {failures - per_minute} more times on {listener} "
            "within a minute (not logged one by one)"
        ), mine
    assert len(lines) == 5 * (per_minute + 1)
