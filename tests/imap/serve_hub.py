"""``mss serve``'s Hub serving IMAP only, for the tests of several IMAP processes.

Usage: python -m tests.imap.serve_hub DATABASE_URL DATA_DIR IMAP_PROCESSES; prints the
implicit-TLS port and the pids of the IMAP child processes, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from mss.config import Settings
from mss.db import Database
from mss.serve import Hub


async def main(url: str, data_dir: str, processes: int) -> None:
    settings = Settings()
    settings.database_url = url
    settings.data_dir = data_dir
    for name in ("submission", "submission_tls", "smtp_relay", "imap", "https", "workers"):
        setattr(settings.listeners, name, False)
    settings.listeners.imap_processes = processes
    settings.ports.imaps = 0
    settings.limits.max_connections_per_ip = 500
    hub = Hub(settings, Database(url))
    await hub.start()
    children = [c.process.pid for c in hub.imap_processes if c.process is not None]
    print(hub.bound["imaps"], *children, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await hub.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
