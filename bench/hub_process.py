"""``mss serve``'s Hub in a process of its own, for benchmarks that read its CPU from outside."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from typing import Any


def _serve(settings: Any, ready: Any) -> None:
    import logging

    from mss.db import Database
    from mss.serve import Hub, freeze_startup_objects, limit_malloc

    limit_malloc()  # as mss serve

    logging.basicConfig(level=logging.WARNING)

    async def run() -> None:
        hub = Hub(settings, Database(settings.effective_database_url))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # as mss serve: its children stop with it
            loop.add_signal_handler(sig, stop.set)
        await hub.start()
        freeze_startup_objects()  # as mss serve (serve_forever)
        ready.send(os.getpid())
        try:
            await stop.wait()
        finally:
            await hub.stop()

    asyncio.run(run())


def start_hub(
    settings: Any, timeout: float = 120.0
) -> tuple[multiprocessing.process.BaseProcess, int]:
    """A spawned process running the hub on ``settings``, once it listens; and its pid."""
    context = multiprocessing.get_context("spawn")
    ready, child_end = context.Pipe()
    # not daemonic: the hub starts children of its own ([listeners] imap_processes...); the
    # benchmark terminates it when done
    process = context.Process(target=_serve, args=(settings, child_end), daemon=False)
    process.start()
    if not ready.poll(timeout):
        process.kill()
        raise SystemExit(f"the hub did not start within {timeout:g} s")
    return process, int(ready.recv())
