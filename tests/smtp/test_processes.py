"""Several SMTP processes on the same ports (``[listeners] smtp_processes``).

``mss serve`` with ``smtp_processes = 2`` serves the SMTP ports from two
processes (SO_REUSEPORT): both take connections, a message accepted by the
child is stored and its follow-up jobs run at once, the per-address
connection limit holds across the processes, a killed child is started again
with its connections forgotten, and the hub's stop ends the child cleanly.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import multiprocessing
import os
import pathlib
import signal
import socket

import aiosmtplib
import pytest
from sqlalchemy import select, update

from mss.config import AUTO_SMTP_PROCESSES, load_settings
from mss.db import Database
from mss.directory.models import Patient
from mss.errors import ConfigError, HubError
from mss.jobs import Job
from mss.serve import Hub as ServeHub
from mss.smtp_gateway.protocol import TOO_MANY_CONNECTIONS, SharedConnectionLimiter
from tests.smtp.conftest import DOCTOR, PATIENT, Hub, signed
from tests.smtp.test_connection_limit import churn


async def serve(hub: Hub, processes: int | str = 2, *, per_ip: int = 20) -> ServeHub:
    """``mss serve`` on the test's database and PKI: the SMTP listeners (free ports) and the job
    workers."""
    settings = copy.deepcopy(hub.settings)
    for name in ("imap", "imaps", "https"):
        setattr(settings.listeners, name, False)
    for name in ("submission", "submission_tls", "smtp_relay"):
        setattr(settings.ports, name, 0)
    settings.listeners.smtp_processes = processes
    settings.limits.max_connections_per_ip = per_ip
    served = ServeHub(settings, Database(settings.effective_database_url))
    await served.start()
    for child in served.smtp_processes:
        child.restart_delay = 0.1
    return served


def limiter_of(served: ServeHub) -> SharedConnectionLimiter:
    limiter = served.services.connection_limiter
    assert isinstance(limiter, SharedConnectionLimiter)
    return limiter


async def counted(limiter: SharedConnectionLimiter, index: int, wanted: int) -> None:
    """Wait until process ``index`` holds ``wanted`` connections (the child counts on its own
    loop)."""
    async with asyncio.timeout(10):
        while limiter.open_in(index) != wanted:
            await asyncio.sleep(0.02)


async def connect_into_child(
    client_for: ServeHub, hub: Hub
) -> tuple[aiosmtplib.SMTP, list[aiosmtplib.SMTP]]:
    """A logged-in client whose connection the child process took, and the others opened on the
    way."""
    limiter = limiter_of(client_for)
    others: list[aiosmtplib.SMTP] = []
    ours = dataclasses.replace(hub, ports=client_for.services.smtp_ports)
    for _ in range(400):  # the child may still be starting (seconds on a loaded machine)
        before = limiter.open_in(1)
        client = await ours.login_client(DOCTOR)
        if limiter.open_in(1) > before:
            return client, others
        if len(others) < 8:
            others.append(client)
        else:  # stay under the per-address limit while the child starts
            await client.quit()
            await asyncio.sleep(0.05)
    raise AssertionError("400 connections and none reached the second process")


async def jobs_done(db: Database, kind: str, count: int) -> None:
    async with asyncio.timeout(20):
        while True:
            async with db.read() as session:
                done = len(
                    (
                        await session.scalars(
                            select(Job.id).where(Job.kind == kind, Job.state == "done")
                        )
                    ).all()
                )
            if done >= count:
                return
            await asyncio.sleep(0.05)


async def test_both_processes_take_connections_and_deliver(hub: Hub) -> None:
    async with hub.db.write() as session:  # so that each delivery queues a notification job
        await session.execute(update(Patient).values(phone="+33612345678"))
    served = await serve(hub)
    try:
        assert len(served.smtp_processes) == 1
        child = served.smtp_processes[0]
        assert child.process is not None and child.process.pid != os.getpid()
        ours = dataclasses.replace(hub, ports=served.services.smtp_ports)
        assert ours.ports["submission"] != hub.ports["submission"]
        identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
        limiter = limiter_of(served)
        first, others = await connect_into_child(served, hub)  # once the child listens
        for client in (first, *others):
            await client.quit()
        await counted(limiter, 1, 0)
        clients = [await ours.login_client(DOCTOR) for _ in range(16)]
        await counted(limiter, 1, 16 - limiter.open_in(0))
        assert (
            limiter.open_in(0) > 0 and limiter.open_in(1) > 0
        )  # the kernel spread them (1 in 32,768 not)
        for client in clients:
            await client.sendmail(DOCTOR, [PATIENT], signed(identity, DOCTOR, PATIENT))
            await client.quit()
        await counted(limiter, 1, 0)
        assert len(await hub.stored(PATIENT)) == 16
        await jobs_done(served.db, "notify.patient", 16)
        # A message the child accepts wakes the job workers here at once, not at their next poll.
        assert served.runner is not None
        served.runner.poll_interval = 3600.0
        await asyncio.sleep(0.6)  # the runner's current wait ends; the next one is an hour
        client, others = await connect_into_child(served, hub)
        for other in others:
            await other.quit()
        await client.sendmail(DOCTOR, [PATIENT], signed(identity, DOCTOR, PATIENT))
        await client.quit()
        await jobs_done(served.db, "notify.patient", 17)
    finally:
        await served.stop()
    assert (
        child.process is not None and child.process.exitcode == 0
    )  # SIGTERM: it closed its listeners


async def test_the_connection_limit_holds_across_processes(hub: Hub) -> None:
    served = await serve(hub, per_ip=6)
    writers = []
    try:
        port = served.services.smtp_ports["submission"]
        limiter = limiter_of(served)
        for _ in range(6):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            assert (await reader.readline()).startswith(b"220 ")
        assert limiter.open_in(0) + limiter.open_in(1) == 6
        for _ in range(4):  # whichever process takes it refuses it
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            assert (await reader.readline()).decode().rstrip() == TOO_MANY_CONNECTIONS
        writers.pop(0).close()
        async with asyncio.timeout(10):
            while limiter.open_in(0) + limiter.open_in(1) != 5:
                await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        assert (await reader.readline()).startswith(b"220 ")
    finally:
        for writer in writers:
            writer.close()
        await served.stop()


async def test_sequential_connections_at_the_limit_over_two_processes(hub: Hub) -> None:
    """At the limit, connect-send-QUIT over and over never gets 421, whichever process takes
    the connection (each one frees the place at QUIT, in the shared counts)."""
    served = await serve(hub, per_ip=10)
    try:
        ours = dataclasses.replace(hub, ports=served.services.smtp_ports)
        limiter = limiter_of(served)
        assert await churn(ours, 10, 12) == []
        async with asyncio.timeout(10):  # every connection closed: no place left taken
            while limiter.open_in(0) + limiter.open_in(1) != 0:
                await asyncio.sleep(0.02)
    finally:
        await served.stop()


async def test_a_killed_smtp_process_is_started_again_without_its_connections(hub: Hub) -> None:
    served = await serve(hub)
    try:
        child = served.smtp_processes[0]
        client, others = await connect_into_child(served, hub)
        for other in others:
            await other.quit()
        limiter = limiter_of(served)
        assert child.process is not None and child.process.pid is not None
        first_pid = child.process.pid
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await client.noop()
        async with asyncio.timeout(60):
            while child.restarts == 0 or not child.process.is_alive():
                await asyncio.sleep(0.05)
        assert child.process.pid != first_pid
        await counted(limiter, 1, 0)  # what the killed process held is forgotten
        identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
        client, others = await connect_into_child(served, hub)  # the new one listens and delivers
        await client.sendmail(DOCTOR, [PATIENT], signed(identity, DOCTOR, PATIENT))
        await client.quit()
        for other in others:
            await other.quit()
        assert len(await hub.stored(PATIENT)) == 1
    finally:
        await served.stop()


def _hold(limiter: SharedConnectionLimiter, ip: str, result: multiprocessing.queues.Queue) -> None:
    result.put([limiter.acquire(ip) for _ in range(3)])


def test_the_shared_limiter_counts_what_every_process_holds() -> None:
    limiter = SharedConnectionLimiter(2, 2)
    here, there = limiter.for_process(0), limiter.for_process(1)
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    other = context.Process(target=_hold, args=(there, "192.0.2.7", result))
    other.start()
    assert result.get(timeout=60) == [True, True, False]  # in the other process: up to the limit
    other.join(60)
    assert not here.acquire("192.0.2.7") and here.acquire("192.0.2.8")
    assert (limiter.open_in(0), limiter.open_in(1)) == (1, 2)
    limiter.reset(1)  # that process is gone
    assert here.acquire("192.0.2.7") and here.acquire("192.0.2.7") and not here.acquire("192.0.2.7")
    here.release("192.0.2.7")
    assert here.acquire("192.0.2.7")


async def test_a_port_another_program_listens_on_is_refused_not_shared(hub: Hub) -> None:
    """Several SMTP processes listen with SO_REUSEPORT, which would let a second ``mss serve``
    (or anything else of the same user that asked for it) share the port: it is refused."""
    taken = socket.create_server(("127.0.0.1", 0), reuse_port=True)
    port = taken.getsockname()[1]
    settings = copy.deepcopy(hub.settings)
    for name in ("imap", "imaps", "https", "submission_tls", "smtp_relay"):
        setattr(settings.listeners, name, False)
    settings.ports.submission = port
    settings.listeners.smtp_processes = 2
    served = ServeHub(settings, Database(settings.effective_database_url))
    try:
        with pytest.raises(HubError, match=f"port {port} for SMTP submission .*already in use"):
            await served.start()
        assert served.smtp_processes == []
    finally:
        taken.close()


def test_smtp_processes_must_be_one_or_more(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="listeners.smtp_processes must be 1 or more, got 0"):
        load_settings(env={"MSS_LISTENERS_SMTP_PROCESSES": "0"})


def test_smtp_processes_auto_is_one_per_core_up_to_four(tmp_path: pathlib.Path) -> None:
    cores = len(os.sched_getaffinity(0))
    config = tmp_path / "mss.toml"
    config.write_text("")
    assert load_settings(config, env={}).listeners.smtp_processes == "auto"  # the default
    for written, count in (('"auto"', min(cores, AUTO_SMTP_PROCESSES)), ("3", 3), ('"2"', 2)):
        config.write_text(f"[listeners]\nsmtp_processes = {written}\n")
        assert load_settings(config, env={}).listeners.smtp_process_count == count
    assert load_settings(
        env={"MSS_LISTENERS_SMTP_PROCESSES": "AUTO"}
    ).listeners.smtp_process_count == min(cores, AUTO_SMTP_PROCESSES)
    # What mss serve runs: "auto" is one process on SQLite (IMAP IDLE is woken by its own
    # process's deliveries only there), the count above on PostgreSQL; a number is a number.
    config.write_text('[listeners]\nsmtp_processes = "auto"\n')
    sqlite = load_settings(config, env={"MSS_DATABASE_URL": "sqlite+aiosqlite:////tmp/x.db"})
    assert sqlite.smtp_process_count == 1
    postgresql = load_settings(
        config, env={"MSS_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/x"}
    )
    assert postgresql.smtp_process_count == min(cores, AUTO_SMTP_PROCESSES)
    config.write_text("[listeners]\nsmtp_processes = 2\n")
    assert (
        load_settings(config, env={"MSS_DATABASE_URL": "sqlite+aiosqlite:////x"}).smtp_process_count
        == 2
    )
    for wrong in ('"many"', "true", "1.5"):
        config.write_text(f"[listeners]\nsmtp_processes = {wrong}\n")
        with pytest.raises(ConfigError, match='smtp_processes: expected a whole number or "auto"'):
            load_settings(config, env={})


async def test_mss_serve_with_auto_serves_smtp_from_one_process_per_core(hub: Hub) -> None:
    served = await serve(hub, processes="auto")
    try:
        cores = min(len(os.sched_getaffinity(0)), AUTO_SMTP_PROCESSES)
        if hub.settings.effective_database_url.startswith("sqlite"):
            cores = 1  # "auto" is one process on SQLite (Settings.smtp_process_count)
        assert len(served.smtp_processes) == cores - 1
        if cores > 1:
            await counted(limiter_of(served), 1, 0)  # the child is up and holds nothing
            client, others = await connect_into_child(served, hub)
            for opened in [client, *others]:
                await opened.quit()
    finally:
        await served.stop()
