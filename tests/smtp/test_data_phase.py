"""DATA read in chunks (mss/smtp_gateway/data_phase.py) against aiosmtpd's own line loop.

The same bytes, cut at random places, go to aiosmtpd's ``SMTP`` and to ``ChunkedDataSMTP``
(small line and size limits, so that Hypothesis reaches them): the replies (250, 500 line
too long, 552 too much data, and those to the commands after the end of DATA) and the
content delivered must be the same. The wire tests of the hub are test_smuggling.py and
test_limits.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mss.smtp_gateway.data_phase import ChunkedDataSMTP

LINE_LIMIT = 40
OPENING = b"HELO client\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"


class Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.contents.append(envelope.original_content)
        return "250 stored"


class Transport(asyncio.Transport):
    """The server's side of a connection: what it writes, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.1", 4000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _converse(cls: type[SMTP], pieces: list[bytes], size_limit: int) -> tuple[bytes, list]:
    recorder = Recorder()

    class Server(cls):  # type: ignore[valid-type, misc]
        line_length_limit = LINE_LIMIT

    server = Server(recorder, data_size_limit=size_limit, hostname="hub", ident="test")
    transport = Transport()
    server.connection_made(transport)
    for piece in pieces:
        server.data_received(piece)
        for _ in range(3):
            await asyncio.sleep(0)
    idle = 0
    while idle < 20:  # until nothing moves any more: every byte is answered
        before = len(transport.written)
        await asyncio.sleep(0)
        idle = idle + 1 if len(transport.written) == before else 0
    handler = server._handler_coroutine
    handler.cancel()
    await asyncio.gather(handler, return_exceptions=True)
    return bytes(transport.written), recorder.contents


def both(data: bytes, cuts: list[int], size_limit: int) -> None:
    stream = OPENING + data + b"\r\n.\r\nNOOP\r\n"
    points = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    pieces = [stream[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]
    expected = asyncio.run(_converse(SMTP, pieces, size_limit))
    got = asyncio.run(_converse(ChunkedDataSMTP, pieces, size_limit))
    assert got == expected


LINE = st.one_of(
    st.binary(max_size=8),
    st.sampled_from([b".", b"..", b".x", b"x.", b"\r", b"\n", b".\n", b"\r.", b"\n.\r"]),
    st.integers(LINE_LIMIT - 4, LINE_LIMIT + 6).map(lambda n: b"y" * n),
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """Lines made of the bytes DATA cares about, ending in CRLF (or not), long or short."""
    parts = draw(st.lists(st.tuples(LINE, st.sampled_from([b"\r\n", b"", b"\n", b"\r"]))))
    return b"".join(line + end for line, end in parts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages(),
    st.lists(st.integers(0, 600), max_size=12),
    st.sampled_from([60, 120, 300, 100_000]),
)
@example(b"", [], 100)  # an empty message: the first line is the end
@example(b".\r\nMAIL FROM:<x@y.example>", [70], 100)  # the end, then pipelined commands
@example(b"a\n.\nb\r.\rc\r\n.\nd", [75, 76, 77], 100)  # smuggling: none of these ends DATA
@example(b"..x\r\n.y\r\n", [71, 72], 100)  # one dot removed, across cuts
@example(b"y" * 41 + b"\r\n", [], 300)  # the longest refused without reading past it
@example(b"y" * 30 + b"\r\n" + b"y" * 30 + b"\r\n" + b"y" * 50, [], 60)  # too much, then too long
@example(b"y" * 30 + b"\r\n" + b"y" * 39 + b"\r\n", [], 60)  # a line aiosmtpd reads: 552
@example(b"y" * 30 + b"\r\n" + b"y" * 41 + b"\r\n", [], 60)  # one it cannot read: 500
def test_chunked_data_gives_what_the_line_loop_gives(
    data: bytes, cuts: list[int], size_limit: int
) -> None:
    both(data, cuts, size_limit)


def test_a_message_far_above_the_size_limit_is_read_through_and_refused() -> None:
    both((b"z" * 30 + b"\r\n") * 20_000, [1000, 5000, 300_000], 1000)
    both(b"z" * 20 + b"\r\n" + b"w" * 700_000 + b"\r\n", [100, 262_000], 1000)
