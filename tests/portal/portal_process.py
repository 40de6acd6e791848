"""The hub's HTTPS application alone in a process, for tests that kill it.

    python -m tests.portal.portal_process DATA_DIR DATABASE_URL CERT KEY

prints the port it listens on (loopback, TLS), then serves until killed.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

from aiohttp import web

from mss.config import Settings
from mss.db import Database
from mss.http import build_app
from mss.services import Services


async def serve(data_dir: str, database_url: str, cert: str, key: str) -> None:
    settings = Settings()
    settings.data_dir, settings.database_url = data_dir, database_url
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = build_app(settings, Database(database_url), Services(settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(*sys.argv[1:5]))
