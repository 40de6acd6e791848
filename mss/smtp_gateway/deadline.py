"""A database step that must answer in time, or the SMTP client gets a 451 at once.

``asyncio.timeout`` alone is not enough: cancelling a SQLite call waits for
the driver thread (stuck in its busy handler) before the rollback can run,
so the reply would come only after the busy timeout. Here the step runs as
its own task; past the deadline it is cancelled and left to unwind in the
background while the client is already answered. It never committed, so
the 451 is honest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from mss.errors import DatabaseUnavailable

T = TypeVar("T")
_unwinding: set[asyncio.Task[Any]] = set()


async def within(seconds: float, step: Coroutine[Any, Any, T]) -> T:
    """The step's result, or DatabaseUnavailable after ``seconds``."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.cancel()
    _unwinding.add(task)
    task.add_done_callback(_forget)
    raise DatabaseUnavailable(f"the database did not answer within {seconds:g} s")


def _forget(task: asyncio.Task[Any]) -> None:
    _unwinding.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
