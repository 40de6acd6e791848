"""Follow-up work as a transactional outbox.

A job is added in the same transaction as what it follows up (a delivered
message, a consent change), so it exists if and only if that committed.
Workers take due jobs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single
writer lock on SQLite), run the handler registered for the job's kind, and
retry failures with exponential back-off. Handlers must be idempotent: a
job may run again after a crash between the handler and the bookkeeping.
A kind may also have a batch handler, given the jobs claimed together in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mss.config import Settings
from mss.db import Base, Database, UTCDateTime, add_row, inserting_in_bulk, utcnow
from mss.errors import DatabaseUnavailable
from mss.metrics import hub_metrics
from mss.services import Services

log = logging.getLogger("mss.jobs")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "state", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending, running, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The runner that last leased it (``runner_identity``): a supervisor releases a dead runner's
    # jobs.
    locked_by: Mapped[str | None] = mapped_column(String(128))
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


_jobs = Job.__table__.c


@dataclass(frozen=True)
class ClaimedJob:
    """A job a runner leased: what its handler and the bookkeeping need."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help; the job fails at once."""


class PartlyDone(Exception):
    """Raised by a batch handler that completed only some of its payloads: the others run again,
    alone.

    ``done`` holds the positions, in the batch's list of payloads, of those that were completed.
    """

    def __init__(self, done: Iterable[int], reason: str) -> None:
        super().__init__(reason)
        self.done = frozenset(done)


def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    run_after: dt.datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 8,
) -> Job:
    """Add a job to the caller's transaction (inside ``enqueuing_in_bulk``: at the block's end)."""
    now = utcnow()
    values = {
        "kind": kind,
        "payload": payload,
        "run_after": run_after or now,
        "dedupe_key": dedupe_key,
        "max_attempts": max_attempts,
        "state": "pending",
        "attempts": 0,
        "created_at": now,
    }
    job: Job = add_row(session, Job, values)
    return job


async def schedule_daily(
    db: Database, kind: str, when: dt.datetime | None = None, *, running: int | None = None
) -> bool:
    """Queue the daily pass ``kind`` for ``when`` (default now) unless one is already queued;
    False if it was (or another hub on the same database queued that day's pass).

    ``running`` is the pass calling this for the next day (it does not count as queued).
    """
    when = when or utcnow()
    async with db.read() as session:
        queued = (
            await session.scalars(
                select(Job.id).where(
                    Job.kind == kind,
                    Job.id != (running or 0),
                    Job.state.in_(("pending", "running")),
                )
            )
        ).first()
    if queued is not None:
        return False
    try:
        async with db.write() as session:
            enqueue(
                session, kind, {}, run_after=when, dedupe_key=f"{kind}:{when.date().isoformat()}"
            )
    except IntegrityError:  # another hub on the same database queued that day's pass
        return False
    return True


def enqueuing_in_bulk(session: AsyncSession) -> contextlib.AbstractAsyncContextManager[None]:
    """Jobs enqueued in the block are inserted together, in order, with one statement when it
    ends."""
    return inserting_in_bulk(session, Job)


Handler = Callable[["JobContext", dict[str, Any]], Awaitable[None]]
BatchHandler = Callable[["JobContext", list[dict[str, Any]]], Awaitable[None]]


@dataclass
class JobContext:
    """What a handler gets besides its payload."""

    db: Database
    job_id: int
    attempt: int
    services: Services


def backoff(attempt: int, base: float = 5.0, cap: float = 3600.0) -> dt.timedelta:
    """Delay before retry number ``attempt`` (1-based): 5 s, 10 s, 20 s... at most an hour."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))


def runner_identity(pid: int | None = None, token: str | None = None) -> str:
    """Who holds a lease: host name, process id and a token drawn at the runner's start.

    The token makes the identity unique even when a pid is reused, on this host or on
    another one that shares the database: only whoever started that runner knows it.
    """
    process = pid if pid is not None else os.getpid()
    return f"{socket.gethostname()}:{process}:{token or secrets.token_hex(8)}"


async def release_leases(db: Database, runner_id: str, reason: str) -> int:
    """Give back at once the running jobs leased by ``runner_id``, a runner known to be gone.

    Only for a runner that cannot finish them any more (its process has exited): the
    jobs become due now, without waiting for their lease to expire. A job whose runner
    died more than once while running it (it may be what kills it) waits its back-off.
    Returns how many were released.
    """
    now = utcnow()
    async with db.write() as session:
        held = (
            await session.execute(
                select(_jobs.id, _jobs.attempts).where(
                    _jobs.locked_by == runner_id, _jobs.state == "running"
                )
            )
        ).all()
        by_attempts: dict[int, list[int]] = {}
        for row in held:
            by_attempts.setdefault(row.attempts, []).append(row.id)
        for attempts, ids in by_attempts.items():
            await session.execute(
                update(Job.__table__)
                .where(_jobs.id.in_(ids), _jobs.locked_by == runner_id, _jobs.state == "running")
                .values(
                    state="pending",
                    locked_until=None,
                    last_error=reason[:4000],
                    run_after=now if attempts <= 1 else now + backoff(attempts - 1),
                )
            )
    return len(held)


class JobRunner:
    """Takes due jobs and runs their handlers; one per hub process, several per database."""

    def __init__(
        self,
        db: Database,
        handlers: dict[str, Handler] | None = None,
        *,
        services: Services | None = None,
        poll_interval: float = 0.5,
        lease: dt.timedelta = dt.timedelta(minutes=5),
        batch: int = 20,
        lanes: int = 8,
        gather: float = 0.05,
        runner_id: str | None = None,
    ) -> None:
        self.db = db
        self.runner_id = runner_id or runner_identity()
        self.handlers: dict[str, Handler] = dict(handlers or {})
        # None: a runner alone (its own tests), with the default settings
        self.services = services if services is not None else Services(Settings())
        self.poll_interval = poll_interval
        self.lease = lease
        self.batch = batch
        self.lanes = lanes
        self.gather = gather
        self.unordered: set[str] = set()
        self.batch_handlers: dict[str, BatchHandler] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def register(
        self,
        kind: str,
        handler: Handler,
        *,
        ordered: bool = True,
        batch: BatchHandler | None = None,
    ) -> None:
        """Run ``handler`` for jobs of ``kind``; ``ordered=False`` lets several run at once.

        ``batch`` gets the payloads of all the jobs of ``kind`` claimed together, in queue
        order, in one call (for an unordered kind, instead of lanes). If it raises, each
        job runs alone with ``handler``, its failure recorded as usual: what the batch did
        must vanish with it (one transaction) or be harmless to do again. A batch that
        completed some of its jobs raises ``PartlyDone`` naming them: only the others
        then run alone, after it.
        """
        self.handlers[kind] = handler
        self.unordered.discard(kind)
        self.batch_handlers.pop(kind, None)
        if batch is not None:
            self.batch_handlers[kind] = batch
        elif not ordered:
            self.unordered.add(kind)

    def wake(self) -> None:
        """Tell the runner that new jobs were committed."""
        self._wake.set()

    async def _claim(self) -> list[ClaimedJob]:
        """Lease up to ``batch`` due jobs with one statement; oldest first."""
        now = utcnow()
        due = (
            select(_jobs.id)
            .where(
                _jobs.state.in_(("pending", "running")),
                _jobs.run_after <= now,
                _jobs.kind.in_(list(self.handlers)),
                or_(_jobs.locked_until.is_(None), _jobs.locked_until < now),
            )
            .order_by(_jobs.run_after, _jobs.id)
            .limit(self.batch)
        )
        if not self.db.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        async with self.db.write() as session:
            rows = (
                await session.execute(
                    update(Job.__table__)
                    .where(_jobs.id.in_(due.scalar_subquery()))
                    .values(
                        state="running",
                        attempts=_jobs.attempts + 1,
                        locked_until=now + self.lease,
                        locked_by=self.runner_id,
                    )
                    .returning(
                        _jobs.id,
                        _jobs.kind,
                        _jobs.payload,
                        _jobs.attempts,
                        _jobs.max_attempts,
                        _jobs.run_after,
                    )
                )
            ).all()
        rows = sorted(rows, key=lambda row: (row.run_after, row.id))  # RETURNING keeps no order
        return [
            ClaimedJob(row.id, row.kind, row.payload, row.attempts, row.max_attempts)
            for row in rows
        ]

    async def run_once(self) -> int:
        """Run every due job once; returns how many ran.

        Jobs of one kind run one after the other, in the order they were queued (a
        cancellation after its request), unless the kind was registered unordered:
        those run in up to ``lanes`` lanes at once. A kind with a batch handler gets
        all its claimed jobs in one call of it (those it did not complete then run one
        by one). Different kinds run side by side. The jobs that succeeded are marked
        done together, in one statement.
        """
        done: list[int] = []

        async def run_queue(queue: list[ClaimedJob]) -> None:
            batch = self.batch_handlers.get(queue[0].kind)
            if batch is not None and len(queue) > 1:
                completed = await self._run_batch(batch, queue)
                done.extend(job.id for number, job in enumerate(queue) if number in completed)
                queue = [job for number, job in enumerate(queue) if number not in completed]
            for job in queue:
                if await self._run(job):
                    done.append(job.id)

        with self.db.inline():  # the runner and handlers run small statements: no thread hop each
            jobs = await self._claim()
            queues: dict[tuple[str, int], list[ClaimedJob]] = {}  # (kind, lane)
            for number, job in enumerate(jobs):
                lane = number % self.lanes if job.kind in self.unordered else 0
                queues.setdefault((job.kind, lane), []).append(job)
            await asyncio.gather(*(run_queue(queue) for queue in queues.values()))
            if done:
                await self._finish(
                    done, {"state": "done", "finished_at": utcnow(), "locked_until": None}
                )
                ended = set(done)
                for job in jobs:
                    if job.id in ended:
                        hub_metrics().jobs_finished.labels(job.kind, "done").inc()
        return len(jobs)

    async def _run(self, job: ClaimedJob) -> bool:
        """Run one job's handler; True when it succeeded (its failure is recorded here)."""
        handler = self.handlers[job.kind]
        ctx = JobContext(db=self.db, job_id=job.id, attempt=job.attempts, services=self.services)
        try:
            await handler(ctx, dict(job.payload))
        except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
            permanent = isinstance(exc, PermanentFailure) or job.attempts >= job.max_attempts
            detail = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, (PermanentFailure, DatabaseUnavailable)):
                log.warning(
                    "job %s (%s) attempt %s failed\n%s",
                    job.id,
                    job.kind,
                    job.attempts,
                    traceback.format_exc(),
                )
            values: dict[str, Any] = {"last_error": detail[:4000], "locked_until": None}
            if permanent:
                values.update(state="failed", finished_at=utcnow())
                await self._on_failed(job, detail)
            else:
                values.update(state="pending", run_after=utcnow() + backoff(job.attempts))
            await self._finish([job.id], values)
            hub_metrics().jobs_finished.labels(job.kind, "failed" if permanent else "retry").inc()
            return False
        return True

    async def _run_batch(self, batch: BatchHandler, queue: list[ClaimedJob]) -> frozenset[int]:
        """Run a queue's jobs together; the positions of those completed (the others will run
        alone)."""
        first = queue[0]
        ctx = JobContext(
            db=self.db, job_id=first.id, attempt=first.attempts, services=self.services
        )
        try:
            await batch(ctx, [dict(job.payload) for job in queue])
        except Exception as exc:  # noqa: BLE001 - the jobs not done run alone next, and fail there
            completed = exc.done if isinstance(exc, PartlyDone) else frozenset()
            log.debug(
                "batch of %s %s jobs: %s not done (%s: %s); running them one by one",
                len(queue),
                first.kind,
                len(queue) - len(completed),
                type(exc).__name__,
                exc,
            )
            return completed
        return frozenset(range(len(queue)))

    async def _on_failed(self, job: ClaimedJob, detail: str) -> None:
        hook = self.services.on_job_failed
        if hook is not None:
            try:
                await hook(self.db, job, detail)
            except Exception:
                log.exception("on_job_failed hook failed for job %s", job.id)

    async def _finish(self, job_ids: list[int], values: dict[str, Any]) -> None:
        try:
            async with self.db.write() as session:
                await session.execute(
                    update(Job.__table__).where(_jobs.id.in_(job_ids)).values(**values)
                )
        except DatabaseUnavailable:
            log.warning(
                "could not record the end of jobs %s; their lease will expire and they will rerun",
                ", ".join(map(str, job_ids)),
            )

    async def run_forever(self) -> None:
        """Run due jobs until ``stop()``: a full batch at once again, a partial one after
        ``gather`` seconds.

        Under load the pause lets jobs gather into larger batches: one claim and one
        bookkeeping statement for many jobs instead of for one or two.
        """
        while not self._stopping:
            try:
                ran = await self.run_once()
            except DatabaseUnavailable as exc:
                log.warning("job runner: %s", exc)
                ran = 0
            if ran >= self.batch:
                continue
            if ran:
                await asyncio.sleep(self.gather)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain(self, timeout: float = 30.0) -> None:
        """Run jobs until none is due (for tests and batch tools)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.run_once():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("jobs still due after the drain timeout")
