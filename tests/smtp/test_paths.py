"""MAIL FROM / RCPT TO paths: the gateway's fast reading of ``<local@domain>`` answers as aiosmtpd
does."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP

from mss.smtp_gateway.protocol import SIMPLE_PATH, HubSMTP

PATHS = [
    "<a@b.c>",
    "<a@b.c> SIZE=100",
    "<a@b.c>SIZE=1",
    "<a@b.c> ",
    "<a@b.c>\tBODY=8BITMIME",
    "<a@b> BODY=8BITMIME SMTPUTF8",
    "<A.B+tag@Patient.Mss.Localhost>",
    "<180017500000035@patient.mss.localhost>",
    "<o'brien#1@x-y.example>",
    " <a@b.c>",
    "<a..b@c>",
    "<.a@b>",
    "<a.@b>",
    "<a@-b.c>",
    "<a@b-.c>",
    "<a@b.>",
    "<a@b..c>",
    '<"q"@b>',
    '<"a b"@c.d> SIZE=5',
    "<>",
    "<> SIZE=10",
    "<a@[127.0.0.1]>",
    "<a @b>",
    "<@x,@y:a@b>",
    "<a(comment)@b>",
    "<a@b> (comment) SIZE=1",
    "<a@b>(c)",
    "a@b",
    "a@b SIZE=1",
    "<a@b",
    "a@b>",
    "",
    "<" + "x" * 64 + "@b.c>",
    "<" + "x" * 65 + "@b.c>",
    "<" + "x" * 65 + "@b.c> SIZE=1",
    "<é@b.c>",
    "<a@bé.c>",
    "<a@b.c>\r",
    "<a@b\u00a0.c>",
]


def _connection(limit: int) -> HubSMTP:
    connection = HubSMTP.__new__(HubSMTP)  # only local_part_limit is read
    connection.local_part_limit = limit
    return connection


@pytest.mark.parametrize("limit", [64, 0])
@pytest.mark.parametrize("path", PATHS)
def test_the_fast_reading_agrees_with_aiosmtpd(path: str, limit: int) -> None:
    connection = _connection(limit)
    assert connection._getaddr(path) == SMTP._getaddr(connection, path)


def test_the_fast_reading_takes_the_usual_paths() -> None:
    assert SIMPLE_PATH.match("<180017500000035@patient.mss.localhost>")
    assert SIMPLE_PATH.match("<jean.dupont@hopital.mss.localhost> SIZE=4096")
    for other in ('<"a b"@c>', "<>", "<a@[127.0.0.1]>", "<@relay:a@b>", "<a(x)@b>"):
        assert not SIMPLE_PATH.match(other)
