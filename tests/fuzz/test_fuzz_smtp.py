"""SMTP: command lines (paths, parameters, AUTH) and DATA as the content stage reads it.

Property: read, or refused with a sentence; never another exception, never a hang.
"""

from __future__ import annotations

from hypothesis import example, given

from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.targets import check, inputs

DEEP_MESSAGE = (
    b"From: a@b.example\r\nSubject: x\r\n"
    + b"Content-Type: message/rfc822\r\n\r\n" * 2000
    + b"ihe_xdm"
)


@fuzz_settings(150)
@given(inputs("smtp_command"))
@example(b"RCPT TO:<a@[")  # AttributeError in the email package's address reader
@example(b"RCPT TO:<")  # IndexError
@example(b"MAIL FROM:<a@")  # IndexError
@example(b"RCPT TO:<post" + b"(" * 1000 + b">")  # RecursionError in nested comments
@example(b"RCPT TO:<\x00>")  # a NUL kept in the address (PostgreSQL cannot store it)
def test_smtp_command_lines_are_read_or_refused(data: bytes) -> None:
    check("smtp_command", data)


@fuzz_settings(40)
@given(inputs("smtp_data", max_edits=3))
@example(DEEP_MESSAGE)  # RecursionError in the email package (the XDM check at delivery)
@example(b"From:Content-Type: multipart/mixed; boundary= a@b.example\r\n\r\n")  # AttributeError
@example(b"From: alice.martin@\r\n\r\n")  # IndexError in the address parser
@example(
    b"From: a@b.example\r\nSubject: =?u\xd6f-8?q?x?=\r\n\r\n"
)  # CharsetError in ENVELOPE words
def test_message_content_is_read_or_refused(data: bytes) -> None:
    check("smtp_data", data)


@fuzz_settings(150)
@given(inputs("header_block"))
def test_plain_header_reader_never_raises(data: bytes) -> None:
    check("header_block", data)
