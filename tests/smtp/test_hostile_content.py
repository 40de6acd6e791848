"""What the fuzz harness found on the SMTP path, on a real session: a sentence, never a 500.

MIME nested deeper than the store opens made the email package recurse past Python's limit
at delivery; paths such as ``<a@[`` made aiosmtpd's address reader raise IndexError or
AttributeError, and a NUL in a path reached the database.
"""

from __future__ import annotations

import pytest

from mss.mailbox.structure import MAX_DEPTH
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, Hub, WireClient, message


async def test_mime_nested_too_deep_is_refused_with_a_sentence(hub: Hub) -> None:
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert (await client.command(f"RCPT TO:<{OTHER_DOCTOR}>".encode()))[0] == 250
    assert (await client.command(b"DATA"))[0] == 354
    head = message(DOCTOR, OTHER_DOCTOR, body="").replace(
        b"Content-Type: text/plain; charset=utf-8\r\n", b""
    )
    nested = (
        b"Content-Type: message/rfc822\r\n\r\n" * 2000
        + b"Content-Type: application/zip; name=ihe_xdm.zip\r\n\r\nPK\r\n"
    )
    client.send(head.removesuffix(b"\r\n") + nested + b".\r\n")
    refusal = f"5.6.0 Message refused: its MIME parts are nested more than {MAX_DEPTH} levels deep"
    assert await client.reply() == (554, refusal)
    assert (await client.command(b"NOOP"))[0] == 250
    await client.close()
    assert await hub.stored(OTHER_DOCTOR) == []


@pytest.mark.parametrize("path", [b"<a@[", b"<", b"<a@", b"<\x00@b.example>"])
async def test_broken_recipient_path_is_a_syntax_error(hub: Hub, path: bytes) -> None:
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    code, text = await client.command(b"RCPT TO:" + path)
    assert (code, text) == (553, "5.1.3 Error: malformed address"), text
    assert (await client.command(f"RCPT TO:<{OTHER_DOCTOR}>".encode()))[0] == 250
    await client.close()
