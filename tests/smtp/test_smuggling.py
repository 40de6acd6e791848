"""SMTP smuggling: only <CRLF>.<CRLF> ends DATA; bare LF or CR is refused, never a second
message."""

from __future__ import annotations

import pytest

from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, SERVICE, Hub, WireClient, message

SMUGGLED = (
    f"MAIL FROM:<{DOCTOR}>\r\nRCPT TO:<{SERVICE}>\r\nDATA\r\n"
    f"From: {DOCTOR}\r\nTo: {SERVICE}\r\nSubject: smuggled\r\n\r\nhidden\r\n"
).encode()


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"])
async def test_fake_end_of_data_never_ends_data(hub: Hub, fake_end: bytes) -> None:
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert (await client.command(f"RCPT TO:<{OTHER_DOCTOR}>".encode()))[0] == 250
    assert (await client.command(b"DATA"))[0] == 354
    head = message(DOCTOR, OTHER_DOCTOR, subject="outer", body="")
    client.send(head + b"first part" + fake_end + SMUGGLED + b".\r\n")
    code, text = await client.reply()
    # One reply for one DATA: the bare line ending is refused, and nothing was smuggled.
    assert (code, text) == (
        550,
        ("5.6.0 Message refused: it contains a bare CR or LF; lines must end with CRLF"),
    )
    assert (await client.command(b"NOOP"))[0] == 250
    await client.close()
    assert await hub.stored(OTHER_DOCTOR) == []
    assert await hub.stored(SERVICE) == []


async def test_dot_stuffing_is_undone_and_a_real_end_works(hub: Hub) -> None:
    client = await WireClient.open(hub)
    for line in (f"MAIL FROM:<{DOCTOR}>", f"RCPT TO:<{OTHER_DOCTOR}>", "DATA"):
        await client.command(line.encode())
    client.send(message(DOCTOR, OTHER_DOCTOR, body="..line starting with a dot\r\n") + b".\r\n")
    assert (await client.reply())[0] == 250
    await client.close()
    stored = (await hub.stored(OTHER_DOCTOR))[0]
    assert stored.raw.endswith(b"\r\n.line starting with a dot\r\n")
