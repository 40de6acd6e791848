"""An idle session is closed after ``limits.smtp_idle_timeout``."""

from __future__ import annotations

import asyncio

import pytest

from mss.config import Settings
from tests.smtp.conftest import Hub, WireClient


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.limits.smtp_idle_timeout = 2.0
    return settings


async def test_idle_timeout_closes_the_connection(hub: Hub) -> None:
    client = await WireClient.open(hub, login=None)
    assert (await client.command(b"NOOP"))[0] == 250
    await asyncio.sleep(3)
    assert await asyncio.wait_for(client.reader.read(), 5) == b""
