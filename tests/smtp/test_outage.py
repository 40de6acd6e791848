"""A database outage gives only 4xx replies, never 250 or 5xx, and the gateway recovers by itself.

PostgreSQL: the hub talks to the database through a TCP proxy on loopback
that the test cuts and restores. SQLite: another process holds the write
lock (BEGIN EXCLUSIVE), so every write times out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mss.config import Settings
from mss.crypto.trust import TrustStore
from mss.db import Database
from mss.jobs import JobRunner
from mss.services import Services
from mss.smtp_gateway import start_smtp_servers
from tests.fixtures_pki import DevPki
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, Hub, message, populate


class TcpProxy:
    """Forwards loopback connections to PostgreSQL until cut; when cut, drops every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut = False
        self.pipes: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.pipes |= {writer, up_writer}
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self.pipes.discard(writer)

    def disconnect(self) -> None:
        self.cut = True
        for writer in list(self.pipes):
            writer.transport.abort()
        self.pipes.clear()

    def restore(self) -> None:
        self.cut = False

    async def stop(self) -> None:
        self.disconnect()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def outage_hub(
    settings: Settings, db: Database, dev_pki: DevPki
) -> AsyncIterator[tuple[Hub, Any]]:
    """A gateway whose database can be cut: through a proxy (PostgreSQL) or a foreign lock
    (SQLite)."""
    settings.limits.database_timeout = 2.0
    dev_pki.install(settings)
    proxy: TcpProxy | None = None
    hub_db = db
    if not db.is_sqlite:
        url = make_url(db.url)
        proxy = TcpProxy(url.port or 5432)
        hub_db = Database(url.set(port=await proxy.start()).render_as_string(hide_password=False))
    services = Services(settings, trust=TrustStore.from_settings(settings, repo_trust_dir=None))
    async with hub_db.read() as session:  # the first connection (through the proxy) is not the test
        await session.execute(text("SELECT 1"))
    runner = JobRunner(hub_db, services=services)
    servers = await start_smtp_servers(settings, hub_db, services)
    hub = Hub(settings, db, dev_pki, services, services.smtp_ports, runner)
    await populate(db, hub)
    try:
        yield hub, proxy
    finally:
        for server in servers:
            server.close()
        if proxy is not None:
            await proxy.stop()
            await hub_db.dispose()


async def try_send(hub: Hub, subject: str) -> int:
    """One whole submission; the reply code of the step that decided."""
    try:
        client = await hub.login_client()
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code
    try:
        await client.sendmail(
            DOCTOR, [OTHER_DOCTOR], message(DOCTOR, OTHER_DOCTOR, subject=subject)
        )
        return 250
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return exc.recipients[0].code
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code
    finally:
        client.close()


async def test_outage_gives_only_4xx_and_recovers(
    outage_hub: tuple[Hub, Any], db: Database
) -> None:
    hub, proxy = outage_hub
    assert await try_send(hub, "before") == 250
    lock: sqlite3.Connection | None = None
    if proxy is not None:
        proxy.disconnect()
    else:
        lock = sqlite3.connect(make_url(db.url).database, timeout=0, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
    during = [await try_send(hub, f"during {i}") for i in range(3)]
    assert all(400 <= code < 500 for code in during), during
    if proxy is not None:
        proxy.restore()
    else:
        assert lock is not None
        lock.execute("ROLLBACK")
        lock.close()
    deadline = asyncio.get_running_loop().time() + 20
    after = await try_send(hub, "after")
    while after != 250 and asyncio.get_running_loop().time() < deadline:
        assert 400 <= after < 500, after
        await asyncio.sleep(0.5)
        after = await try_send(hub, "after")
    assert after == 250
    subjects = [m.subject for m in await hub.stored(OTHER_DOCTOR)]
    assert subjects[0] == "before" and subjects[-1] == "after"
    assert not any(s.startswith("during") for s in subjects)
