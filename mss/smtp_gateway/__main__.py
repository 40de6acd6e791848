"""Run the SMTP gateway and its job workers alone: ``python -m mss.smtp_gateway --config mss.toml``.

Used by the crash test and the benchmark (``mss serve`` runs the whole hub).
Prints one line ``ready {"submission": port, ...}`` once every listener is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from mss.config import load_settings
from mss.crypto.trust import TrustStore
from mss.db import Database
from mss.jobs import JobRunner
from mss.services import Services
from mss.smtp_gateway import register_jobs, start_smtp_servers


async def run(config: str | None, workers: bool) -> None:
    from mss.serve import keep_trust_fresh, register_follow_ups

    settings = load_settings(config)
    register_follow_ups()  # DMP filing, agenda, notifications: enqueued as in the hub
    db = Database(settings.effective_database_url)
    services = Services(settings, trust=TrustStore.from_settings(settings))
    runner = JobRunner(db, services=services)
    services.jobs.use(runner)
    register_jobs(runner)
    servers = await start_smtp_servers(settings, db, services)
    # anchors and CRLs re-read every minute, as in the hub
    tasks = [asyncio.create_task(keep_trust_fresh(settings, services.trust_store()))]
    if workers:
        tasks.append(asyncio.create_task(runner.run_forever()))
    print("ready " + json.dumps(services.smtp_ports), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    runner.stop()
    tasks[0].cancel()
    for server in servers:
        server.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    await db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mss.smtp_gateway", description=__doc__)
    parser.add_argument(
        "--config", default=None, help="mss.toml (default: $MSS_CONFIG, ./mss.toml)"
    )
    parser.add_argument("--no-workers", action="store_true", help="do not run the job workers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(run(args.config, not args.no_workers))


if __name__ == "__main__":
    main()
