"""IMAP wire values: the token types the parser produces and how responses are rendered.

Parsed commands are lists of :class:`Atom` (atoms, numbers, flags, sequence
sets, ``BODY[...]<...>``), ``bytes`` (quoted strings and literals) and
nested ``list`` (parenthesised lists). Responses render ``None`` as NIL,
``int`` as a number, ``Atom`` verbatim, ``str``/``bytes`` as a quoted
string when that is safe and as a literal otherwise.
"""

from __future__ import annotations

import re
from typing import Any, Union


class Atom(str):
    """An IMAP atom (sent and received verbatim, never quoted)."""

    __slots__ = ()


Token = Union[Atom, bytes, list]  # noqa: UP007 - a runtime alias


class ImapError(Exception):
    """A command failed: becomes ``tag NO`` or ``tag BAD`` with an optional response code."""

    status = "NO"

    def __init__(self, sentence: str, code: str | None = None) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.code = code

    def response(self, tag: str) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status} {code}{one_line(self.sentence)}\r\n".encode()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """Text for a response line: control characters (CR, LF...) from the client's input spelled
    out."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class BadCommand(ImapError):
    """A syntax error or a command not allowed in this state: ``tag BAD``."""

    status = "BAD"


class Literal(bytes):
    """Bytes always rendered as a literal, even when they would fit a quoted string."""

    __slots__ = ()


def _quotable(data: bytes) -> bool:
    return len(data) < 1024 and all(0x20 <= b < 0x7F for b in data)


def render_string(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    if not isinstance(value, Literal) and _quotable(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def render(value: Any) -> bytes:
    """One value in IMAP syntax."""
    if value is None:
        return b"NIL"
    if isinstance(value, Atom):
        return value.encode("utf-8")
    if isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, (str, bytes)):
        return render_string(value)
    if isinstance(value, (list, tuple)):
        return b"(" + b" ".join(render(item) for item in value) + b")"
    raise TypeError(f"cannot render {type(value).__name__} in IMAP")


def render_list(items: list[Any]) -> bytes:
    """A parenthesised list whose items are already-rendered bytes or values."""
    return (
        b"("
        + b" ".join(
            item if isinstance(item, bytes) and not isinstance(item, Literal) else render(item)
            for item in items
        )
        + b")"
    )


def as_text(token: Any, what: str) -> str:
    """A string argument (atom, quoted or literal) as text."""
    if isinstance(token, Atom):
        return str(token)
    if isinstance(token, bytes):
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError:
            raise BadCommand(f"{what} is not valid UTF-8") from None
    raise BadCommand(f"expected {what}")


def as_number(token: Any, what: str) -> int:
    if isinstance(token, Atom) and token.isdigit() and len(token) < 20:
        return int(token)
    raise BadCommand(f"expected a number for {what}")
