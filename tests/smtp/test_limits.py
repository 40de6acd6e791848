"""Limits: message size (and the one for patients), recipients, line length, idle timeout,
connections."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from mss.config import Settings
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PATIENT, Hub, WireClient, message, signed


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.limits.max_message_size = 200_000
    settings.limits.max_message_size_to_patient = 50_000
    settings.limits.max_recipients = 3
    settings.limits.max_connections_per_ip = 4
    return settings


async def test_oversize_message_refused(hub: Hub) -> None:
    client = await hub.login_client()
    big = message(DOCTOR, OTHER_DOCTOR, body=("x" * 70 + "\r\n") * 3000)
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await client.sendmail(DOCTOR, [OTHER_DOCTOR], big)
    assert refused.value.code == 552
    await client.quit()
    assert await hub.stored(OTHER_DOCTOR) == []


async def test_patient_size_limit(hub: Hub) -> None:
    identity = hub.pki.issue_smime(DOCTOR)
    raw = signed(identity, DOCTOR, PATIENT, body=("y" * 70 + "\r\n") * 1000)
    client = await hub.login_client()
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await client.sendmail(DOCTOR, [PATIENT], raw)
    assert refused.value.code == 552
    assert refused.value.message.startswith("5.3.4 Message too big to a patient")
    errors, _ = await client.sendmail(
        DOCTOR, [OTHER_DOCTOR], message(DOCTOR, OTHER_DOCTOR, body=("y" * 70 + "\r\n") * 1000)
    )
    assert errors == {}
    await client.quit()


async def test_too_many_recipients(hub: Hub) -> None:
    client = await WireClient.open(hub)
    await client.command(f"MAIL FROM:<{DOCTOR}>".encode())
    codes = [(await client.command(f"RCPT TO:<{OTHER_DOCTOR}>".encode()))[0] for _ in range(4)]
    assert codes == [250, 250, 250, 452]
    await client.close()


async def test_line_too_long_refused(hub: Hub) -> None:
    client = await WireClient.open(hub)
    for line in (f"MAIL FROM:<{DOCTOR}>", f"RCPT TO:<{OTHER_DOCTOR}>", "DATA"):
        await client.command(line.encode())
    client.send(message(DOCTOR, OTHER_DOCTOR, body="z" * 2000 + "\r\n") + b".\r\n")
    code, text = await client.reply()
    assert code == 500 and "Line too long" in text
    await client.close()


async def test_connections_per_ip(hub: Hub) -> None:
    clients = [await WireClient.open(hub, login=None) for _ in range(4)]
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.ports["submission"])
    line = await asyncio.wait_for(reader.readline(), 5)
    assert line.startswith(b"421 4.7.0 Too many connections")
    writer.close()
    await clients[0].close()
    await asyncio.sleep(0.1)
    again = await WireClient.open(hub, login=None)
    for client in [again, *clients[1:]]:
        await client.close()
