"""DATA read in chunks until ``<CRLF>.<CRLF>``, with aiosmtpd's exact outcome and refusals.

aiosmtpd 1.4.6 reads DATA one line per iteration (``readuntil(b"\\r\\n")`` on a stream
limited to one line, which also pauses the transport every two kilobytes): 12.7% of the
hub's CPU under load (issue 17). ``ChunkedDataSMTP.smtp_DATA`` asks the stream for the
next ``.<CRLF>`` instead, in pieces of up to ``PIECE`` bytes, and checks the lines of the
whole message at once with C-speed ``bytes`` methods. What it must keep, and
tests/smtp/test_data_phase.py compares with aiosmtpd's own loop on random messages cut at
random places:

- only ``<CRLF>.<CRLF>`` ends DATA (RFC 5321 §4.1.1.4; or ``.<CRLF>`` as the first line):
  a bare LF or CR never ends it (SMTP smuggling), and the bytes after the end stay in
  the stream for the next command (PIPELINING);
- a line longer than ``line_length_limit`` bytes with its CRLF is refused with 500, a
  message above ``data_size_limit`` bytes with 552, whichever aiosmtpd met first, after
  the whole DATA has been read (RFC 5321 §4.2.5);
- the leading dot of a line is removed (RFC 5321 §4.5.2), once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger("mss.smtp")

PIECE = 256 * 1024  # the stream's limit while reading DATA: how much one read may return
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"  # aiosmtpd's sentences
TOO_MUCH_DATA = "552 Error: Too much mail data"


class DataState(enum.Enum):
    NOMINAL = "nominal"
    TOO_LONG = "too long"
    TOO_MUCH = "too much"


@dataclass(frozen=True)
class DataRead:
    """What a DATA phase read: the unstuffed content, or why it is refused."""

    state: DataState
    content: bytes = b""


async def read_data(
    reader: asyncio.StreamReader, *, size_limit: int | None, line_length_limit: int
) -> DataRead:
    """Read from ``reader`` through the end of DATA; its limit is restored on return.

    aiosmtpd's stream limit (one line) decides which lines it could not even read
    (``overrun``): those are refused as too long before their bytes are counted.
    """
    line_limit = reader._limit  # type: ignore[attr-defined]
    overrun = line_limit + 2
    # Bytes past the size limit are only counted: enough is kept to know which refusal
    # aiosmtpd would have met first on the line that crosses the limit.
    keep = size_limit + overrun + 16 if size_limit else None
    kept = bytearray()
    total = 0
    before = b"\r\n"  # the two bytes before the next piece: DATA starts at a line start
    reader._limit = PIECE  # type: ignore[attr-defined]
    try:
        while True:
            try:
                piece = await reader.readuntil(b".\r\n")
                ends = _two_before(before, piece, len(piece) - 3) == b"\r\n"
            except asyncio.LimitOverrunError as error:  # no ".\r\n" in PIECE bytes
                piece = await reader.read(error.consumed)
                ends = False
            except asyncio.IncompleteReadError as error:  # the client hung up in DATA
                raise ConnectionResetError("connection closed during DATA") from error
            if ends:
                piece = piece[:-3]
            if keep is None or len(kept) < keep:
                kept += piece
            total += len(piece)
            before = _two_before(before, piece, len(piece))
            if ends:
                break
    finally:
        reader._limit = line_limit  # type: ignore[attr-defined]
    if keep is not None and size_limit is not None and total > size_limit:
        return DataRead(_first_refusal(bytes(kept), size_limit, line_length_limit, overrun))
    body = bytes(kept)
    if body and max(map(len, body.split(b"\r\n"))) + 2 > line_length_limit:
        return DataRead(DataState.TOO_LONG)
    if body.startswith(b"."):
        body = body[1:]
    # No "\r\n.\r\n" inside the body (it would have ended DATA), so each "\r\n." is one
    # line's leading dot.
    return DataRead(DataState.NOMINAL, body.replace(b"\r\n.", b"\r\n"))


def _two_before(before: bytes, piece: bytes, end: int) -> bytes:
    """The two bytes before ``piece[end]``, ``before`` being the two bytes before ``piece``."""
    return piece[end - 2 : end] if end >= 2 else (before + piece[:end])[-2:]


def _first_refusal(kept: bytes, size_limit: int, line_length_limit: int, overrun: int) -> DataState:
    """aiosmtpd's order, line by line, for a message above the size limit (refused anyway)."""
    *lines, rest = kept.split(b"\r\n")
    counted = 0
    for line in lines:
        length = len(line) + 2
        if length > overrun:
            return DataState.TOO_LONG
        counted += length
        if counted > size_limit:
            return DataState.TOO_MUCH
        if length > line_length_limit:
            return DataState.TOO_LONG
    # The line crossing the limit was cut where ``kept`` stops: far longer than one line.
    return DataState.TOO_LONG if len(rest) + 1 > overrun else DataState.TOO_MUCH


class ChunkedDataSMTP(SMTP):
    """aiosmtpd's SMTP with ``smtp_DATA`` reading in chunks (``read_data``)."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            read = await read_data(
                self._reader,
                size_limit=self.data_size_limit,
                line_length_limit=self.line_length_limit,
            )
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if read.state is not DataState.NOMINAL:
            await self.push(LINE_TOO_LONG if read.state is DataState.TOO_LONG else TOO_MUCH_DATA)
            self._set_post_data_state()
            return
        content: Any = read.content
        if self._decode_data:
            try:
                content = read.content.decode(
                    "utf-8" if self.enable_SMTPUTF8 else "ascii",
                    errors="surrogateescape" if self.enable_SMTPUTF8 else "strict",
                )
            except UnicodeDecodeError:
                await self.push("500 Error: strict ASCII mode")
                return
        self.envelope.content = content
        self.envelope.original_content = read.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)
