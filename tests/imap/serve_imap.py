"""A second hub process serving IMAP only, for the cross-process tests.

Usage: python -m tests.imap.serve_imap DATABASE_URL CERT KEY; prints the implicit-TLS port.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

from mss.config import Settings
from mss.db import Database
from mss.mailbox.imap import start_imap_servers


async def main(url: str, cert: str, key: str) -> None:
    settings = Settings()
    settings.database_url = url
    settings.ports.imap = 0
    settings.ports.imaps = 0
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    db = Database(url)
    servers = await start_imap_servers(settings, db, context)
    print(servers[1].sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
