"""A second hub process serving IMAP only, for the cross-process tests.

Usage: python -m tests.imap.serve_imap DATABASE_URL DATA_DIR; prints the implicit-TLS port.
DATA_DIR holds the hub's PKI (``pki/server.pem``), as the test process's does.
"""

from __future__ import annotations

import asyncio
import sys

from mss.config import Settings
from mss.crypto.tls import server_context
from mss.db import Database
from mss.mailbox.imap import start_imap_servers


async def main(url: str, data_dir: str) -> None:
    settings = Settings()
    settings.database_url = url
    settings.data_dir = data_dir
    settings.ports.imap = 0
    settings.ports.imaps = 0
    db = Database(url)
    servers = await start_imap_servers(settings, db, server_context(settings))
    print(servers[1].sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
