"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import base64


class InvalidMailboxName(ValueError):
    """A mailbox name that is not valid modified UTF-7."""


def encode(name: str) -> str:
    """Unicode folder name to its IMAP wire form."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(wire: str) -> str:
    """IMAP wire form to the Unicode folder name; raises InvalidMailboxName."""
    out: list[str] = []
    i = 0
    while i < len(wire):
        char = wire[i]
        if ord(char) > 0x7E or ord(char) < 0x20:
            raise InvalidMailboxName(f"{wire!r}: mailbox names must be modified UTF-7")
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = wire.find("-", i)
        if end < 0:
            raise InvalidMailboxName(f"{wire!r}: unterminated '&' sequence")
        chunk = wire[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            data = chunk.replace(",", "/")
            try:
                decoded = base64.b64decode(data + "=" * (-len(data) % 4), validate=True).decode(
                    "utf-16-be"
                )
            except (ValueError, UnicodeDecodeError):
                raise InvalidMailboxName(f"{wire!r}: bad modified UTF-7 sequence") from None
            out.append(decoded)
        i = end + 1
    return "".join(out)
