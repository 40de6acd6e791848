"""The per-address connection limit under churn: a connection that said QUIT no longer counts.

A client that reads 221 and connects again at once must find its place free, even while
the server is still closing the old connection (TLS close_notify, ``connection_lost``
later). Issue 17: 6 of 40 new connections got 421 at 20 sessions with the default limit
of 20. The same over two SMTP processes is in test_processes.py.
"""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from mss.config import Settings
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, Hub, message

SESSIONS = 20
ROUNDS = 40


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.limits.max_connections_per_ip = SESSIONS
    return settings


async def churn(hub: Hub, sessions: int, rounds: int) -> list[int]:
    """``sessions`` clients, each ``rounds`` times: connect, STARTTLS, AUTH, one message, QUIT.

    The clients run on a loop of their own (a thread), as a separate client would: they
    connect again as soon as they read 221, whatever the server's loop is still doing.
    Returns the codes of every refused connection (421 when the limit said no).
    """
    refused: list[int] = []

    async def one_client() -> None:
        for _ in range(rounds):
            try:
                # 800 deliveries from 20 sessions: on a loaded machine (load 10 was seen) one
                # reply may take more than the usual 10 s; the limit is what is tested here.
                client = await hub.login_client(DOCTOR, timeout=60.0)
            except aiosmtplib.SMTPConnectResponseError as error:
                refused.append(error.code)
                continue
            await client.sendmail(DOCTOR, [OTHER_DOCTOR], message(DOCTOR, OTHER_DOCTOR))
            await client.quit()

    async def clients() -> None:
        # One login first: the rest come from the credential cache, not from twenty argon2
        # checks of the test's costly hash queued on two slots (seconds on a loaded machine).
        client = await hub.login_client(DOCTOR)
        await client.quit()
        await asyncio.gather(*(one_client() for _ in range(sessions)))

    await asyncio.to_thread(asyncio.run, clients())
    return refused


async def test_sequential_connections_at_the_limit_are_never_refused(hub: Hub) -> None:
    assert await churn(hub, SESSIONS, ROUNDS) == []
    assert len(await hub.stored(OTHER_DOCTOR)) == SESSIONS * ROUNDS


async def test_the_limit_still_refuses_one_more_open_connection(hub: Hub) -> None:
    clients = [await hub.login_client(DOCTOR) for _ in range(SESSIONS)]
    with pytest.raises(aiosmtplib.SMTPConnectResponseError) as refused:
        await hub.login_client(DOCTOR)
    assert refused.value.code == 421
    await clients[0].quit()  # its place is free once 221 is read
    again = await hub.login_client(DOCTOR)
    for client in [again, *clients[1:]]:
        await client.quit()
