"""Several processes on the HTTPS port (``[listeners] https_processes``).

``mss serve`` with ``https_processes = 2`` serves the portal and the APIs from two processes
(SO_REUSEPORT). A patient logs in and reads pages over many connections: the kernel spreads
them over both processes (told apart by which process holds the server side of each
connection, from /proc), and the session, its CSRF token and its one-time code hold in
either. A port another program listens on is still refused, and "auto" means one process on
SQLite.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest

from mss.config import AUTO_SMTP_PROCESSES, Settings, usable_cpus
from mss.db import Database
from mss.errors import ConfigError, HubError
from mss.notify import read_outbox
from mss.serve import Hub, https_count
from tests.fixtures_pki import DevPki
from tests.portal.conftest import PASSWORD, add_patient

INS = "101751234560309"
PHONE = "+33612345678"


def _https_only(settings: Settings, dev_pki: DevPki, processes: int | str) -> Settings:
    dev_pki.install(settings)
    for name in ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "workers"):
        setattr(settings.listeners, name, False)
    settings.listeners.https_processes = processes
    return settings


@pytest.fixture
async def served(settings: Settings, dev_pki: DevPki) -> AsyncIterator[Hub]:
    hub = Hub(_https_only(settings, dev_pki, 2), Database(settings.effective_database_url))
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


def _tcp_table() -> list[tuple[int, int, str, str]]:
    """Each loopback TCP socket: (local port, remote port, state, inode)."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local, remote = fields[1].split(":")[-1], fields[2].split(":")[-1]
                rows.append((int(local, 16), int(remote, 16), fields[3], fields[9]))
    return rows


def _server_pid(server_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server side of the one open connection to ``server_port``."""
    rows = _tcp_table()
    established = "01"
    [client_port] = [
        local for local, remote, state, _ in rows if remote == server_port and state == established
    ]
    [inode] = [  # not an earlier connection's TIME_WAIT from the same client port
        i
        for local, remote, state, i in rows
        if (local, remote) == (server_port, client_port) and state == established
    ]
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:  # closed meanwhile
                continue
    return None


class Browser:
    """One patient's cookies; every request on a new connection, and who served it."""

    def __init__(self, served: Hub) -> None:
        self.port = served.bound["https"]
        children = [c.process.pid for c in served.https_processes if c.process is not None]
        self.pids = [os.getpid(), *(pid for pid in children if pid is not None)]
        self.jar = aiohttp.CookieJar(unsafe=True)
        self.served_by: Counter[int] = Counter()
        self.sequence: list[int] = []  # who served each request, in order

    async def request(
        self, method: str, path: str, data: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        async with aiohttp.ClientSession(
            f"https://127.0.0.1:{self.port}",
            cookie_jar=self.jar,
            connector=aiohttp.TCPConnector(ssl=False),  # the dev PKI's certificate
        ) as session:
            async with session.request(method, path, data=data, allow_redirects=False) as resp:
                text = await resp.text()
            # the connection waits in the session's pool (keep-alive): who holds its other end
            pid = await asyncio.to_thread(_server_pid, self.port, self.pids)
            assert pid is not None, "no process of the hub holds the connection"
            self.served_by[pid] += 1
            self.sequence.append(pid)
            return resp.status, dict(resp.headers), text

    async def post(
        self, path: str, data: dict[str, str], csrf_from: str | None = None
    ) -> tuple[int, dict[str, str], str]:
        _status, _headers, html = await self.request("GET", csrf_from or path)
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, f"no CSRF token on {csrf_from or path}"
        return await self.request("POST", path, {"csrf": found.group(1), **data})


async def test_a_patient_is_served_by_both_processes(served: Hub) -> None:
    assert len(served.https_processes) == 1
    await add_patient(served.db, INS, "Martin", "Claire")
    browser = Browser(served)
    status, headers, _ = await browser.post(
        "/connexion", {"identifiant": INS, "mot_de_passe": PASSWORD}
    )
    assert (status, headers["Location"]) == (303, "/connexion/code")
    texts = [r["text"] for r in read_outbox(served.settings) if r["to"] == PHONE]
    code = re.search(r"\b(\d{6})\b", texts[-1])
    assert code is not None
    status, headers, _ = await browser.post("/connexion/code", {"code": code.group(1)})
    assert (status, headers["Location"]) == (303, "/")
    async with asyncio.timeout(60):  # the child may take seconds to start on a loaded machine
        while len(browser.served_by) < 2 or min(browser.served_by.values()) < 3:
            status, _, html = await browser.request("GET", "/")
            assert status == 200 and "Bonjour Claire" in html
    assert set(browser.served_by) == set(browser.pids)


async def test_a_form_its_code_and_the_logout_cross_processes(served: Hub) -> None:
    """The CSRF token of a form read from one process is accepted by the other, the one-time
    code set by one is checked by the other, and a logout ends the session for both."""
    await add_patient(served.db, INS, "Martin", "Claire")
    csrf_crossed = code_crossed = False
    async with asyncio.timeout(90):
        while not (csrf_crossed and code_crossed):
            browser = Browser(served)
            status, headers, _ = await browser.post(
                "/connexion", {"identifiant": INS, "mot_de_passe": PASSWORD}
            )
            assert (status, headers["Location"]) == (303, "/connexion/code")
            form_pid, password_pid = browser.sequence[-2:]
            texts = [r["text"] for r in read_outbox(served.settings) if r["to"] == PHONE]
            code = re.search(r"\b(\d{6})\b", texts[-1])
            assert code is not None
            status, headers, _ = await browser.post("/connexion/code", {"code": code.group(1)})
            assert (status, headers["Location"]) == (303, "/")
            csrf_crossed |= form_pid != password_pid
            code_crossed |= browser.sequence[-1] != password_pid
    status, headers, _ = await browser.post("/deconnexion", {}, csrf_from="/")
    assert status == 303
    browser.served_by.clear()
    async with asyncio.timeout(30):
        while len(browser.served_by) < 2:
            status, headers, _ = await browser.request("GET", "/")
            assert status in (302, 303) and headers["Location"].startswith("/connexion")


async def test_a_killed_child_is_started_again_and_the_hub_stops_it_cleanly(
    settings: Settings, dev_pki: DevPki
) -> None:
    hub = Hub(_https_only(settings, dev_pki, 2), Database(settings.effective_database_url))
    await hub.start()
    try:
        [child] = hub.https_processes
        child.restart_delay = 0.1
        assert child.process is not None and child.process.pid is not None
        os.kill(child.process.pid, signal.SIGKILL)
        async with asyncio.timeout(60):
            while child.restarts < 1:
                await asyncio.sleep(0.05)
            browser = Browser(hub)  # the new child's pid
            assert len(browser.pids) == 2
            while len(browser.served_by) < 2:
                status, _, _ = await browser.request("GET", "/connexion")
                assert status == 200
    finally:
        await hub.stop()
    assert child.process is not None and child.process.exitcode == 0


async def test_a_port_another_program_listens_on_is_refused_not_shared(
    settings: Settings, dev_pki: DevPki
) -> None:
    """SO_REUSEPORT would let a second ``mss serve`` share the HTTPS port: it is refused."""
    taken = socket.create_server(("127.0.0.1", 0), reuse_port=True)
    port = taken.getsockname()[1]
    _https_only(settings, dev_pki, 2).ports.https = port
    hub = Hub(settings, Database(settings.effective_database_url))
    try:
        with pytest.raises(HubError, match=f"port {port} for HTTPS .*already in use"):
            await hub.start()
        assert hub.https_processes == []
    finally:
        taken.close()


async def test_auto_is_one_per_core_on_postgresql_and_one_on_sqlite(
    settings: Settings, db: Database
) -> None:
    settings.listeners.https_processes = "auto"
    expected = min(usable_cpus(), AUTO_SMTP_PROCESSES) if db.dialect == "postgresql" else 1
    assert https_count(settings, db) == expected
    settings.listeners.https_processes = 3  # a number is honoured on either engine
    assert https_count(settings, db) == 3


def test_https_processes_is_a_number_or_auto(tmp_path: object) -> None:
    from pathlib import Path

    from mss.config import load_settings

    config = Path(str(tmp_path)) / "mss.toml"
    config.write_text("")
    assert load_settings(config, env={}).listeners.https_processes == "auto"  # the default
    config.write_text('[listeners]\nhttps_processes = "auto"\n')
    assert load_settings(config, env={}).listeners.https_processes == "auto"
    config.write_text("[listeners]\nhttps_processes = 2\n")
    assert load_settings(config, env={}).listeners.https_processes == 2
    config.write_text("[listeners]\nhttps_processes = 0\n")
    with pytest.raises(ConfigError, match="listeners.https_processes must be 1 or more, got 0"):
        load_settings(config, env={})
    config.write_text('[listeners]\nhttps_processes = "many"\n')
    with pytest.raises(ConfigError, match='https_processes: expected a whole number or "auto"'):
        load_settings(config, env={})
