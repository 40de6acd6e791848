"""Group commit: writes that are ready at the same moment share one transaction and one commit.

Each caller hands its request to the ``GroupCommit`` of its database and
waits. One writer task per database and event loop takes every request
waiting (up to ``max_batch``), runs them in order inside one transaction
(``Database.write``), commits, and only then answers each caller: a caller
never hears "done" before its data is committed. While one batch commits the
next one gathers, so no time window is added to a delivery.

If the shared transaction fails for a reason other than the database being
unavailable (a decision refusing one request, an integrity error), it is
rolled back and every request runs again alone, so one bad request does not
fail the others and each gets its own answer. When the database is
unavailable every caller of the batch gets ``DatabaseUnavailable``.

Deadlines: a caller that waited ``timeout`` seconds gives up with
``DatabaseUnavailable`` (an honest 451) unless its batch has already started
to commit, in which case it waits for the commit's outcome. A batch with a
caller that gave up is rolled back, never committed, and its other callers
are put back in the queue. The writer is not cancelled on SQLite: cancelling
an aiosqlite call leaves the statement running in the driver's thread, and a
write lock it takes later is never released.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import Database, within
from mss.errors import DatabaseUnavailable

R = TypeVar("R")
T = TypeVar("T")
BatchWriter = Callable[[AsyncSession, Sequence[R]], Awaitable[list[T]]]
HARD_LIMIT = 3.0  # PostgreSQL: a batch still running after 3 deadlines is cancelled


@dataclass(eq=False)
class _Waiting(Generic[R, T]):
    request: R
    future: asyncio.Future[T]
    timeout: float
    gave_up: bool = False
    committing: bool = False


class _GaveUp(Exception):
    """A caller of the batch stopped waiting: roll back, never commit what it was told failed."""


@dataclass
class BatchStats:
    """What the writer did, for the benchmark: batches, requests, seconds inside transactions."""

    batches: int = 0
    requests: int = 0
    retried_alone: int = 0
    seconds: float = 0.0
    sizes: dict[int, int] = field(default_factory=dict)


class GroupCommit(Generic[R, T]):
    """One writer for one kind of request on one database; see the module docstring."""

    def __init__(
        self,
        db: Database,
        write: BatchWriter[R, T],
        *,
        max_batch: int = 64,
        integrity_attempts: int = 3,
    ) -> None:
        self.db = db
        self.write = write
        self.max_batch = max_batch
        self.integrity_attempts = integrity_attempts
        self.stats = BatchStats()
        self._waiting: list[_Waiting[R, T]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, request: R, timeout: float) -> T:
        """The request's result once committed; DatabaseUnavailable after about ``timeout`` s."""
        loop = asyncio.get_running_loop()
        waiting: _Waiting[R, T] = _Waiting(request, loop.create_future(), timeout)
        self._waiting.append(waiting)
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_all())
        try:
            return await asyncio.wait_for(asyncio.shield(waiting.future), timeout)
        except TimeoutError:
            if waiting.committing or waiting.future.done():
                return await waiting.future  # the commit has begun: its outcome is the answer
            waiting.gave_up = True
            raise DatabaseUnavailable(f"the database did not answer within {timeout:g} s") from None

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            try:
                await self._commit(batch)
            except BaseException as exc:  # never leave a caller waiting forever
                for waiting in batch:
                    _fail(waiting, DatabaseUnavailable(f"the delivery writer stopped: {exc!r}"))
                raise

    async def _commit(self, batch: list[_Waiting[R, T]]) -> None:
        live = [w for w in batch if not w.gave_up and not w.future.done()]
        if not live:
            return
        try:
            results = await self._transaction(live)
        except _GaveUp:
            self._waiting[:0] = [w for w in live if not w.gave_up]  # theirs was rolled back: again
            return
        except (DatabaseUnavailable, TimeoutError) as exc:
            for waiting in live:
                _fail(waiting, exc)
            return
        except Exception as exc:  # noqa: BLE001 - handed to its caller, or retried alone
            if len(live) == 1:
                _fail(live[0], exc)
                return
            self.stats.retried_alone += len(live)
            for waiting in live:
                await self._commit([waiting])
            return
        for waiting, result in zip(live, results, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(result)

    async def _transaction(self, live: list[_Waiting[R, T]]) -> list[T]:
        requests = [w.request for w in live]

        async def attempt() -> list[T]:
            for number in range(self.integrity_attempts):
                try:
                    async with self.db.write() as session:
                        results = await self.write(session, requests)
                        if any(w.gave_up for w in live):
                            raise _GaveUp
                        for waiting in live:
                            waiting.committing = True  # from here on, callers wait for the outcome
                        return results
                except IntegrityError:
                    # Two first deliveries to one mailbox may race to create its folders; the
                    # whole transaction rolled back, so running it again is safe.
                    if number == self.integrity_attempts - 1 or len(requests) > 1:
                        raise
                    for waiting in live:
                        waiting.committing = False
            raise AssertionError("unreachable")

        started = time.perf_counter()
        try:
            with (
                self.db.inline()
            ):  # small indexed statements: on SQLite, no thread hop per statement
                if self.db.is_sqlite:
                    return (
                        await attempt()
                    )  # bounded by SQLite's busy timeout; see the module docstring
                return await within(HARD_LIMIT * max(w.timeout for w in live), attempt())
        finally:
            self.stats.batches += 1
            self.stats.requests += len(requests)
            self.stats.sizes[len(requests)] = self.stats.sizes.get(len(requests), 0) + 1
            self.stats.seconds += time.perf_counter() - started


def _fail(waiting: _Waiting[Any, Any], exc: BaseException) -> None:
    if not waiting.future.done():
        waiting.future.set_exception(exc)


_writers: weakref.WeakKeyDictionary[Database, dict[str, GroupCommit[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


def group_commit(
    db: Database, name: str, write: BatchWriter[R, T], **options: Any
) -> GroupCommit[R, T]:
    """The process's one ``GroupCommit`` called ``name`` on ``db`` (made on first use)."""
    per_db = _writers.setdefault(db, {})
    found = per_db.get(name)
    if found is None:
        found = per_db[name] = GroupCommit(db, write, **options)
    return found
