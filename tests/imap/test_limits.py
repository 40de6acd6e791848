"""Attack surface: bad commands, long lines, big literals, connection limits, autologout."""

from __future__ import annotations

import asyncio
import ssl

from mss.mailbox.imap import server as imap_server
from tests.imap.conftest import RunningImap, Wire


async def test_bad_commands_get_reasons(wire: Wire) -> None:
    await wire.check("a1 FROBNICATE", "a1 BAD unknown command FROBNICATE")
    await wire.check('a2 LOGIN "unterminated', "a2 BAD unterminated quoted string")
    await wire.check("a3 LOGIN (a", "a3 BAD unbalanced parenthesis")
    await wire.login()
    await wire.check("a4 SELECT INBOX", "{*}a4 OK [READ-WRITE] SELECT completed")
    await wire.check("a5 FETCH 1:x FLAGS", "a5 BAD invalid sequence set 1:x")
    await wire.check("a6 FETCH 1 (FLAGS BOGUS)", "a6 BAD unknown FETCH data item BOGUS")
    await wire.check(
        "a7 SEARCH CHARSET KOI8-R TEXT x",
        "a7 NO [BADCHARSET (UTF-8 US-ASCII)] charset koi8-r is not supported",
    )
    await wire.check(
        "a8 STORE 1 +FLAGS (\\Recent)", "a8 BAD \\Recent is not a flag that can be set"
    )


async def test_a_flood_of_bad_commands_closes_the_connection(wire: Wire) -> None:
    for i in range(imap_server.MAX_BAD_IN_A_ROW - 1):
        await wire.check(f"x{i} NONSENSE", f"x{i} BAD unknown command NONSENSE")
    wire.send("last NONSENSE")
    assert await wire.read_line() == "last BAD unknown command NONSENSE\r\n"
    assert await wire.read_line() == "* BYE too many invalid commands\r\n"
    assert await wire.reader.read() == b""


async def test_line_too_long_closes(wire: Wire) -> None:
    wire.send("a1 NOOP " + "x" * (imap_server.MAX_LINE + 10))
    assert (await wire.read_line()).startswith("* BAD command line too long")


async def test_literal_over_the_limit_is_refused_before_it_is_sent(
    imap: RunningImap, wire: Wire
) -> None:
    imap.settings.limits.imap_max_literal = 1000
    await wire.login()
    wire.send("a1 APPEND INBOX {5000}")
    assert (
        await wire.read_line()
        == "a1 NO [TOOBIG] the message is larger than the limit of 1000 bytes\r\n"
    )
    await wire.check("a2 NOOP", "a2 OK NOOP completed")
    wire.send("a3 APPEND INBOX {5000+}")
    assert (await wire.read_line()).startswith("* BAD literal of 5000 bytes is over the limit")


async def test_connections_per_address_are_limited(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    imap.settings.limits.max_connections_per_ip = 2
    service = imap.servers[0].mss_imap_service  # type: ignore[attr-defined]
    service.per_ip.limit = 2
    first = await Wire.connect(imap, client_ssl)
    second = await Wire.connect(imap, client_ssl)
    reader, writer = await asyncio.open_connection(
        imap.host, imap.tls_port, ssl=client_ssl, server_hostname="localhost"
    )
    third = Wire(reader, writer)
    assert (
        await third.read_line() == "* BYE [UNAVAILABLE] too many connections from your address\r\n"
    )
    for client in (first, second, third):
        await client.close()


async def test_connections_per_user_are_limited(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    service = imap.servers[0].mss_imap_service  # type: ignore[attr-defined]
    service.per_user.limit = 1
    first = await Wire.connect(imap, client_ssl)
    await first.login()
    second = await Wire.connect(imap, client_ssl)
    await second.check(
        'a1 LOGIN jean.dupont@mss.localhost "correct horse battery"',
        "a1 NO [LIMIT] too many connections to this mailbox; close another mail client first",
    )
    await first.close()
    await second.close()


async def test_autologout(imap: RunningImap, wire: Wire) -> None:
    imap.settings.limits.imap_autologout = 0.3
    await wire.check("a1 NOOP", "a1 OK NOOP completed")
    assert await wire.read_line() == "* BYE Autologout: no command for too long\r\n"


async def test_idle_times_out_with_keepalives(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    service = imap.servers[0].mss_imap_service  # type: ignore[attr-defined]
    service.keepalive = 0.2
    imap.settings.limits.imap_idle_timeout = 0.5
    wire = await Wire.connect(imap, client_ssl)
    await wire.login()
    wire.send("a1 IDLE")
    assert await wire.read_line() == "+ idling\r\n"
    assert await wire.read_line() == "* OK Still here\r\n"
    assert await wire.read_line() == "* OK Still here\r\n"
    assert await wire.read_line() == "* BYE IDLE for too long, closing\r\n"
    await wire.close()


async def test_tls_connections_get_a_small_read_buffer_and_still_take_big_literals(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    from mss.mailbox.imap.server import TLS_READ_BUFFER

    implicit = await Wire.connect(imap, client_ssl)
    reader, writer = await asyncio.open_connection(imap.host, imap.port)
    starttls = Wire(reader, writer)
    await starttls.read_line()
    await starttls.check("s1 STARTTLS", "s1 OK Begin TLS negotiation now")
    await writer.start_tls(client_ssl, server_hostname="localhost")
    await starttls.check("s2 NOOP", "s2 OK NOOP completed")
    service = imap.servers[0].mss_imap_service  # type: ignore[attr-defined]
    sizes = [len(c.writer.transport._ssl_protocol._ssl_buffer) for c in service.connections]
    assert sizes == [TLS_READ_BUFFER, TLS_READ_BUFFER]
    await implicit.login()
    body = b"From: a@b.fr\r\nSubject: big\r\n\r\n" + b"0123456789abcdef" * 20_000 + b"\r\n"
    implicit.send(b"a1 APPEND Drafts {%d+}\r\n" % len(body) + body + b"\r\n")
    assert (await implicit.until_tagged("a1")).endswith("APPEND completed\n")
    await implicit.command("a2 SELECT Drafts")
    got = await implicit.command("a3 FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    assert f"RFC822.SIZE {len(body)}" in got and body.decode() in got.replace("\n", "\r\n")
    await implicit.close()
    await starttls.close()
