"""Fixtures for the mailbox store and IMAP tests: mailboxes with known passwords."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import argon2
import pytest

from mss.config import Settings
from mss.crypto import tls
from mss.db import Database
from mss.directory.models import Mailbox, MailboxKind
from mss.mailbox.imap import start_imap_servers, stop_imap_servers
from mss.mailbox.store import ensure_folders
from tests.fixtures_pki import DevPki

PASSWORD = "correct horse battery"
_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_HASH = _HASHER.hash(PASSWORD)


async def make_mailbox(
    db: Database, address: str, kind: MailboxKind = MailboxKind.PER, password: str | None = PASSWORD
) -> int:
    """A mailbox with its standard folders; returns its id."""
    async with db.write() as session:
        mailbox = Mailbox(
            address=address,
            kind=kind,
            display_name=address.split("@")[0],
            password_hash=_HASH
            if password == PASSWORD
            else (_HASHER.hash(password) if password else None),
        )
        session.add(mailbox)
        await session.flush()
        await ensure_folders(session, mailbox.id)
        return mailbox.id


@pytest.fixture
async def mailbox_id(db: Database) -> int:
    return await make_mailbox(db, "jean.dupont@mss.localhost")


# --- TLS (the hub's development PKI and contexts) and a running IMAP server on loopback ---


@pytest.fixture(scope="session")
def tls_settings(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki) -> Settings:
    """Settings whose data directory holds the development PKI, as after ``mss pki init``."""
    settings = Settings()
    settings.data_dir = str(tmp_path_factory.mktemp("imap-tls") / "var")
    return dev_pki.install(settings)


@pytest.fixture(scope="session")
def server_ssl(tls_settings: Settings) -> ssl.SSLContext:
    """The hub's own server context (certificate from the PKI, TLS 1.2 floor, ciphers)."""
    return tls.server_context(tls_settings)


@pytest.fixture(scope="session")
def client_ssl(tls_settings: Settings, dev_pki: DevPki) -> ssl.SSLContext:
    """The hub's client context: trusts the development PKI's anchors and checks the host name."""
    return tls.client_context(tls_settings, trust=dev_pki.trust)


@dataclass
class RunningImap:
    host: str
    port: int  # STARTTLS
    tls_port: int  # implicit TLS
    settings: Settings
    servers: list[asyncio.Server]


@pytest.fixture
async def imap(
    settings: Settings, db: Database, server_ssl: ssl.SSLContext, mailbox_id: int
) -> AsyncIterator[RunningImap]:
    """Both IMAP listeners on 127.0.0.1, on free ports, for the test's database."""
    settings.limits.max_connections_per_ip = 200
    servers = await start_imap_servers(settings, db, server_ssl)
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    yield RunningImap("127.0.0.1", ports[0], ports[1], settings, servers)
    await stop_imap_servers(servers)


class Wire:
    """A raw IMAP client for transcript tests: send a line, compare what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, imap: RunningImap, client_ssl: ssl.SSLContext, *, tls: bool = True
    ) -> Wire:
        reader, writer = await asyncio.open_connection(
            imap.host,
            imap.tls_port if tls else imap.port,
            ssl=client_ssl if tls else None,
            server_hostname="localhost" if tls else None,
        )
        wire = cls(reader, writer)
        await wire.read_line()
        return wire

    async def read_line(self, timeout: float = 10) -> str:
        """One response line, with any literals inline."""
        out = bytearray()
        while True:
            line = await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout)
            out += line
            match = re.search(rb"\{(\d+)\}\r\n$", line)
            if not match:
                return out.decode("utf-8", "replace")
            out += await asyncio.wait_for(self.reader.readexactly(int(match.group(1))), timeout)

    def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.writer.write(data if data.endswith(b"\r\n") else data + b"\r\n")

    async def until_tagged(self, tag: str, timeout: float = 10) -> str:
        lines = []
        while True:
            line = await self.read_line(timeout)
            lines.append(line)
            if line.startswith(tag + " "):
                return "".join(lines).replace("\r\n", "\n")

    async def command(self, line: str) -> str:
        """Send one tagged command; everything until its tagged reply, CRLF shown as newlines."""
        self.send(line)
        return await self.until_tagged(line.split(" ", 1)[0])

    async def check(self, line: str, expected: str) -> str:
        """Send a command and compare the transcript; ``{*}`` in the expectation matches any
        text."""
        got = await self.command(line)
        want = expected.strip("\n") + "\n"
        pattern = "^" + ".*?".join(re.escape(piece) for piece in want.split("{*}")) + "$"
        assert re.match(pattern, got, re.DOTALL), f"\nsent: {line}\nexpected:\n{want}\ngot:\n{got}"
        return got

    async def login(
        self, address: str = "jean.dupont@mss.localhost", password: str = PASSWORD
    ) -> None:
        got = await self.command(f'L1 LOGIN "{address}" "{password}"')
        assert got.rstrip().endswith("L1 OK Logged in"), got

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


@pytest.fixture
async def wire(imap: RunningImap, client_ssl: ssl.SSLContext) -> AsyncIterator[Wire]:
    """A connection over implicit TLS, not yet logged in."""
    client = await Wire.connect(imap, client_ssl)
    yield client
    await client.close()
