"""The jobs outbox: a job exists only if its transaction committed, retries back off, failures
end."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from mss.config import Settings
from mss.db import Database, utcnow
from mss.jobs import Job, JobContext, JobRunner, PartlyDone, PermanentFailure, backoff, enqueue
from mss.services import Services


async def _jobs(db: Database) -> list[Job]:
    async with db.read() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def _make_due(db: Database) -> None:
    async with db.write() as session:
        await session.execute(update(Job).values(run_after=utcnow() - dt.timedelta(seconds=1)))


async def test_a_rolled_back_transaction_leaves_no_job(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            enqueue(session, "noop", {"n": 1})
            raise RuntimeError("delivery failed")
    assert await _jobs(db) == []


async def test_handler_runs_once_and_job_is_done(db: Database) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append(payload)

    async with db.write() as session:
        enqueue(session, "noop", {"n": 1})
    runner = JobRunner(db, {"noop": handler})
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0
    assert seen == [{"n": 1}]
    [job] = await _jobs(db)
    assert job.state == "done" and job.attempts == 1 and job.finished_at is not None


async def test_failure_is_retried_with_backoff_then_succeeds(db: Database) -> None:
    calls = 0

    async def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("smarthost down")

    async with db.write() as session:
        enqueue(session, "flaky", {})
    runner = JobRunner(db, {"flaky": flaky})
    before = utcnow()
    await runner.run_once()
    [job] = await _jobs(db)
    assert job.state == "pending" and "smarthost down" in job.last_error
    assert job.run_after >= before + backoff(1) - dt.timedelta(seconds=1)
    assert await runner.run_once() == 0, "not due before its back-off"
    await _make_due(db)
    await runner.run_once()
    await _make_due(db)
    await runner.run_once()
    [job] = await _jobs(db)
    assert (job.state, job.attempts, calls) == ("done", 3, 3)


async def test_permanent_failure_and_exhausted_attempts_call_the_hook(db: Database) -> None:
    failed: list[tuple[str, str]] = []

    async def on_failed(_db: Database, job: Job, detail: str) -> None:
        failed.append((job.kind, detail))

    async def permanent(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise PermanentFailure("recipient domain is not in the trust space")

    async def always(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise TimeoutError("no answer")

    async with db.write() as session:
        enqueue(session, "permanent", {})
        enqueue(session, "always", {}, max_attempts=2)
    runner = JobRunner(
        db,
        {"permanent": permanent, "always": always},
        services=Services(Settings(), on_job_failed=on_failed),
    )
    await runner.run_once()
    await _make_due(db)
    await runner.run_once()
    states = {job.kind: (job.state, job.attempts) for job in await _jobs(db)}
    assert states == {"permanent": ("failed", 1), "always": ("failed", 2)}
    assert sorted(kind for kind, _ in failed) == ["always", "permanent"]
    assert any("trust space" in detail for _, detail in failed)


async def test_dedupe_key_refuses_a_second_identical_job(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    async with db.write() as session:
        enqueue(session, "noop", {}, dedupe_key="file:42")
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            enqueue(session, "noop", {}, dedupe_key="file:42")
    assert len(await _jobs(db)) == 1


async def test_two_runners_never_run_the_same_job(db: Database) -> None:
    ran: list[int] = []

    async def record(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(payload["n"])
        await asyncio.sleep(0.001)

    async with db.write() as session:
        for n in range(60):
            enqueue(session, "rec", {"n": n})
    first, second = (
        JobRunner(db, {"rec": record}, batch=7),
        JobRunner(db, {"rec": record}, batch=7),
    )

    async def drain(runner: JobRunner) -> None:
        while await runner.run_once():
            pass

    await asyncio.gather(drain(first), drain(second))
    assert sorted(ran) == list(range(60))


async def test_one_kind_keeps_its_order_and_unordered_kinds_run_side_by_side(db: Database) -> None:
    order: list[int] = []
    running = 0
    most = 0

    async def ordered(ctx: JobContext, payload: dict[str, Any]) -> None:
        order.append(payload["n"])
        await asyncio.sleep(0)

    async def notify(ctx: JobContext, payload: dict[str, Any]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1

    async with db.write() as session:
        for n in range(6):
            enqueue(session, "ordered", {"n": n})
            enqueue(session, "notify", {"n": n})
    runner = JobRunner(db, batch=50)
    runner.register("ordered", ordered)
    runner.register("notify", notify, ordered=False)
    assert await runner.run_once() == 12
    assert order == list(range(6))
    assert most > 1, "unordered jobs ran one at a time"
    assert {job.state for job in await _jobs(db)} == {"done"}


async def test_a_batch_runs_in_one_transaction_or_each_job_alone(db: Database) -> None:
    """A kind with a batch handler: claimed jobs run together; if the batch fails, nothing of it
    was committed and each job runs alone, the bad one failing with its own error."""
    from mss.directory.models import Organisation

    batches: list[list[int]] = []
    alone: list[int] = []

    async def write(session: Any, n: int) -> None:
        if n == 13:
            raise PermanentFailure(f"job {n} cannot be done")
        session.add(Organisation(name=f"org {n}"))
        await session.flush()

    async def one(ctx: JobContext, payload: dict[str, Any]) -> None:
        alone.append(payload["n"])
        async with ctx.db.write() as session:
            await write(session, payload["n"])

    async def many(ctx: JobContext, payloads: list[dict[str, Any]]) -> None:
        batches.append([p["n"] for p in payloads])
        async with ctx.db.write() as session:
            for payload in payloads:
                await write(session, payload["n"])

    async def names() -> list[str]:
        async with db.read() as session:
            return sorted((await session.scalars(select(Organisation.name))).all())

    runner = JobRunner(db)
    runner.register("org", one, batch=many)
    async with db.write() as session:
        for n in (1, 2, 3):
            enqueue(session, "org", {"n": n})
    assert await runner.run_once() == 3
    assert batches == [[1, 2, 3]] and alone == []
    assert await names() == ["org 1", "org 2", "org 3"]

    async with db.write() as session:
        for n in (4, 13, 5):
            enqueue(session, "org", {"n": n})
    assert await runner.run_once() == 3
    assert batches[1] == [4, 13, 5] and alone == [
        4,
        13,
        5,
    ]  # the batch rolled back, then one by one
    assert await names() == ["org 1", "org 2", "org 3", "org 4", "org 5"]  # each written once
    states = {job.payload["n"]: (job.state, job.last_error) for job in await _jobs(db)}
    assert states[13] == ("failed", "PermanentFailure: job 13 cannot be done")
    assert all(states[n][0] == "done" for n in (1, 2, 3, 4, 5))

    async with db.write() as session:
        enqueue(session, "org", {"n": 6})
    assert await runner.run_once() == 1
    assert alone[-1] == 6 and len(batches) == 2  # a single job runs alone


async def test_an_unordered_kind_with_a_batch_handler_gets_its_jobs_in_one_call(
    db: Database,
) -> None:
    """No lanes: the claimed jobs go to the batch handler together. When it raises, each job runs
    alone with its own failure accounting; when it raises PartlyDone, only the jobs it did not
    do."""
    batches: list[list[int]] = []
    alone: list[int] = []

    async def one(ctx: JobContext, payload: dict[str, Any]) -> None:
        alone.append(payload["n"])
        if payload["n"] == 13:
            raise ConnectionError("provider down")

    async def many(ctx: JobContext, payloads: list[dict[str, Any]]) -> None:
        numbers = [p["n"] for p in payloads]
        batches.append(numbers)
        if 13 in numbers:
            raise ConnectionError("provider down")
        if 7 in numbers:
            raise PartlyDone(
                {position for position, n in enumerate(numbers) if n != 7}, "7 did not go"
            )

    async def enqueue_all(*numbers: int) -> None:
        async with db.write() as session:
            for n in numbers:
                enqueue(session, "notify", {"n": n})

    async def states() -> dict[int, tuple[str, int, str]]:
        return {
            job.payload["n"]: (job.state, job.attempts, job.last_error) for job in await _jobs(db)
        }

    runner = JobRunner(db, batch=50, lanes=4)
    runner.register("notify", one, ordered=False, batch=many)
    await enqueue_all(1, 2, 3, 4, 5)
    assert await runner.run_once() == 5
    assert batches == [[1, 2, 3, 4, 5]] and alone == []
    assert {state for state, _, _ in (await states()).values()} == {"done"}

    await enqueue_all(6, 13, 8)
    before = utcnow()
    assert await runner.run_once() == 3
    assert batches[1] == [6, 13, 8] and alone == [6, 13, 8]
    after = await states()
    assert after[13] == ("pending", 1, "ConnectionError: provider down")
    assert after[6][0] == after[8][0] == "done"
    [retried] = [job for job in await _jobs(db) if job.payload["n"] == 13]
    assert retried.run_after >= before + backoff(1) - dt.timedelta(seconds=1)

    await enqueue_all(9, 7, 10)
    assert await runner.run_once() == 3
    assert batches[2] == [9, 7, 10] and alone[3:] == [7]  # only the job the batch did not do
    after = await states()
    assert [after[n][:2] for n in (9, 7, 10)] == [("done", 1)] * 3
