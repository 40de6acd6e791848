"""The job workers in a second process (``[listeners] job_process = true``).

The hub starts the child, which runs every job kind on the same database; the
hub's own process runs none. Killed, the child is started again; the hub's
stop ends it with SIGTERM, after its current jobs. Killed while it holds jobs, the
hub gives them back at once and the next child runs them, long before their lease.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from mss.agenda.convocations import CONVOCATION_JOB
from mss.config import Settings
from mss.crypto import pki
from mss.db import Database, utcnow
from mss.jobs import Job, enqueue
from mss.notify import notify_patient
from mss.serve import Hub, JobProcess
from tests.portal.conftest import add_patient


def _workers_only(settings: Settings) -> Settings:
    for name in ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "https"):
        setattr(settings.listeners, name, False)
    settings.listeners.job_process = True
    settings.data_path.mkdir(parents=True, exist_ok=True)
    pki.init_pki(settings.pki_dir, ["localhost"], operator_domain=settings.domain)
    return settings


async def _queue_job(db: Database, message_id: int) -> int:
    """A convocation job for a message that does not exist: its handler fails it at once, with a
    reason."""
    async with db.write() as session:
        job = enqueue(session, CONVOCATION_JOB, {"message_id": message_id, "mailbox_id": 1})
        await session.flush()
        return job.id


async def _ended(db: Database, job_id: int, timeout: float = 60.0) -> Job:
    async with asyncio.timeout(timeout):
        while True:
            async with db.read() as session:
                job = await session.scalar(select(Job).where(Job.id == job_id))
            if job is not None and job.state in ("done", "failed"):
                return job
            await asyncio.sleep(0.1)


async def test_the_child_runs_the_jobs_and_stops_with_the_hub(settings: Settings) -> None:
    hub = Hub(_workers_only(settings), Database(settings.effective_database_url))
    await hub.start()
    try:
        child = hub.job_process
        assert (
            isinstance(child, JobProcess) and child.process is not None and child.process.is_alive()
        )
        assert child.process.pid != os.getpid()
        assert hub.services is not None
        assert (
            hub.services.jobs.target is child
        )  # delivery wakes the child, not an idle runner here
        job_id = await _queue_job(hub.db, 424242)
        child.wake()
        job = await _ended(hub.db, job_id)
        assert (
            job.state == "failed"
            and "message 424242 or patient mailbox 1 is gone" in job.last_error
        )
    finally:
        await hub.stop()
    assert child.process is not None and not child.process.is_alive()
    assert child.process.exitcode == 0  # SIGTERM: it finished its loop and closed its database


async def test_a_killed_child_is_started_again(settings: Settings) -> None:
    hub = Hub(_workers_only(settings), Database(settings.effective_database_url))
    await hub.start()
    try:
        child = hub.job_process
        assert child is not None and child.process is not None
        child.restart_delay = 0.1
        first_pid = child.process.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        async with asyncio.timeout(60):
            while (
                child.restarts == 0
                or child.process.pid == first_pid
                or not child.process.is_alive()
            ):
                await asyncio.sleep(0.05)
        job = await _ended(hub.db, await _queue_job(hub.db, 515151))
        assert job.state == "failed" and "message 515151" in job.last_error
    finally:
        await hub.stop()
    assert not child.process.is_alive()


async def test_without_job_process_the_workers_stay_in_the_hub(settings: Settings) -> None:
    settings = _workers_only(settings)
    settings.listeners.job_process = False
    hub = Hub(settings, Database(settings.effective_database_url))
    await hub.start()
    try:
        assert hub.job_process is None and hub.services is not None
        assert hub.services.jobs.target is hub.runner
        job = await _ended(hub.db, await _queue_job(hub.db, 616161))
        assert job.state == "failed" and "message 616161" in job.last_error
    finally:
        await hub.stop()


class StallingSmarthost:
    """A real SMTP server on loopback that holds the first message's DATA without answering."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []
        self.stalling = True
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.stalling:
            self.stalled.set()
            await self.release.wait()  # the sender is killed meanwhile: this answer goes nowhere
            return "451 4.3.0 too late"
        self.received.append(envelope)
        return "250 OK"


async def test_a_child_killed_while_running_jobs_leaves_them_to_the_next_at_once(
    settings: Settings,
) -> None:
    settings = _workers_only(settings)
    smarthost = StallingSmarthost()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(smarthost, hostname="smarthost.test"), "127.0.0.1", 0
    )
    settings.notifications.smarthost = "127.0.0.1"
    settings.notifications.smarthost_port = server.sockets[0].getsockname()[1]
    hub = Hub(settings, Database(settings.effective_database_url))
    patient = await add_patient(
        hub.db, "201751234564118", "Noël", "Hugo", email="hugo@example.org", phone=None
    )
    await hub.start()
    try:
        child = hub.job_process
        assert child is not None and child.process is not None
        child.restart_delay = 0.1
        async with hub.db.write() as session:
            (job,) = notify_patient(session, patient, "new_message", "/messages")
            await session.flush()
            job_id = job.id
        child.wake()
        async with asyncio.timeout(60):
            await smarthost.stalled.wait()  # the child is inside the job's handler
        async with hub.db.read() as session:
            held = await session.scalar(select(Job).where(Job.id == job_id))
        assert held is not None and held.state == "running" and held.locked_by == child.runner_id
        assert held.locked_until is not None and held.locked_until - utcnow() > dt.timedelta(
            minutes=4
        )
        smarthost.stalling = False
        os.kill(child.process.pid, signal.SIGKILL)
        job = await _ended(hub.db, job_id, timeout=30)  # the lease had 5 minutes to go
        assert job.state == "done" and job.attempts == 2
        assert [envelope.rcpt_tos for envelope in smarthost.received] == [["hugo@example.org"]]
        assert child.restarts == 1
    finally:
        smarthost.release.set()
        await hub.stop()
        server.close()
