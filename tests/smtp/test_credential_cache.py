"""The verified-credential cache across processes: a changed password fails at once in every
process.

Each SMTP process remembers the logins it verified (``mss.crypto.passwords``);
the stored hash is part of what it remembers, and every login reads the
mailbox's row, so a password changed anywhere misses every process's cache
at its next login, with nothing to broadcast.
"""

from __future__ import annotations

import asyncio
import dataclasses

import aiosmtplib

from mss.directory.store import set_mailbox_password
from tests.smtp.conftest import DOCTOR, PASSWORD, Hub
from tests.smtp.test_processes import limiter_of, serve

NEW_PASSWORD = "a brand new passphrase 2026"


async def _log_in(hub: Hub, password: str) -> tuple[aiosmtplib.SMTP, int]:
    client = hub.client()
    await client.connect()
    await client.starttls()
    try:
        await client.login(DOCTOR, password)
    except aiosmtplib.SMTPAuthenticationError as refused:
        return client, refused.code
    return client, 235


async def test_a_changed_password_fails_at_once_in_both_processes(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0  # many wrong tries here, no waits
    hub.settings.login_throttle.lock_after = 1000
    served = await serve(hub, per_ip=400)
    ours = dataclasses.replace(hub, ports=served.services.smtp_ports)
    limiter = limiter_of(served)
    clients: list[aiosmtplib.SMTP] = []
    try:
        for _ in range(150):  # logins in both processes (the child may still be starting)
            client, code = await _log_in(ours, PASSWORD)
            clients.append(client)
            assert code == 235
            if limiter.open_in(0) and limiter.open_in(1):
                break
            await asyncio.sleep(0.05)
        assert limiter.open_in(0) and limiter.open_in(1)
        async with served.db.write() as session:
            await set_mailbox_password(session, DOCTOR, NEW_PASSWORD)
        reached = set()
        for _ in range(150):
            before = (limiter.open_in(0), limiter.open_in(1))
            client, code = await _log_in(ours, PASSWORD)
            clients.append(client)
            assert code == 535, "the old password was accepted after the change"
            after = (limiter.open_in(0), limiter.open_in(1))
            reached |= {index for index in (0, 1) if after[index] > before[index]}
            if reached == {0, 1}:
                break
        assert reached == {0, 1}, "the old password was not tried in both processes"
        client, code = await _log_in(ours, NEW_PASSWORD)
        clients.append(client)
        assert code == 235
    finally:
        for client in clients:
            client.close()
        await served.stop()
