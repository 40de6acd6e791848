"""Raw RFC 5322 header blocks: split, unfold, decode, and parse address lists.

Everything here works on the exact bytes of a message, so that the
offsets computed in :mod:`mss.mailbox.structure` stay exact and the
values IMAP returns in ENVELOPE are the values as written (RFC 3501
returns encoded words undecoded; the client decodes them).
"""

from __future__ import annotations

import email.errors
import email.header
import re
from typing import Any

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def header_end(raw: bytes, start: int = 0, end: int | None = None) -> int:
    """The offset where the body of the entity at ``raw[start:end]`` begins (after the blank
    line)."""
    end = len(raw) if end is None else end
    if raw.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if raw.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    match = _BLANK_LINE.search(raw, start, end)
    return match.end() if match else end


def text_of(value: bytes) -> str:
    """Header bytes as text: UTF-8 (RFC 6532) when valid, otherwise Latin-1, never an error."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def split_headers(block: bytes) -> list[tuple[str, str]]:
    """The fields of a header block as (name, unfolded raw value) in order; junk lines are
    skipped."""
    fields: list[tuple[str, str]] = []
    for line in _FOLD.sub(b"", block).splitlines():
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            continue
        fields.append((text_of(name), text_of(value.strip(b" \t\r"))))
    return fields


def first(fields: list[tuple[str, str]], name: str) -> str | None:
    """The value of the first field called ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    for key, value in fields:
        if key.lower() == lowered:
            return value
    return None


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; a malformed word is kept as written."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.MessageError):
        return (
            value  # MessageError: HeaderParseError, and CharsetError for a charset like "u\xd6f-8"
        )


# --- RFC 5322 address lists, as RFC 3501 ENVELOPE address structures ---

_SPECIALS = set('()<>@,;:\\".[]')


def _tokenize(text: str) -> tuple[list[tuple[str, str]], list[bool]]:
    """Words ("atom", "qs", "dlit"), specials and comments, and whether blank space came before
    each."""
    tokens: list[tuple[str, str]] = []
    spaced: list[bool] = []
    blank = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        start = len(tokens)
        if c in " \t\r\n":
            i += 1
            blank = True
            continue
        if c == "(":
            depth = 0
            j = i
            while j < n:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            tokens.append(("comment", re.sub(r"\\(.)", r"\1", text[i + 1 : j])))
            i = j + 1
        elif c == '"':
            i += 1
            buf: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            tokens.append(("qs", "".join(buf)))
            i += 1
        elif c == "[":
            j = text.find("]", i)
            j = n - 1 if j < 0 else j
            tokens.append(("dlit", text[i : j + 1]))
            i = j + 1
        elif c in _SPECIALS:
            tokens.append(("special", c))
            i += 1
        else:
            j = i
            while j < n and text[j] not in _SPECIALS and text[j] not in " \t\r\n":
                j += 1
            tokens.append(("atom", text[i:j]))
            i = j
        spaced.extend([blank] * (len(tokens) - start))
        blank = tokens[-1][0] == "comment"  # a comment separates words as blank space does
    return tokens, spaced


def _phrase(tokens: list[tuple[str, str]], spaced: list[bool]) -> str | None:
    """A display name: its words, one space where the header had blank space or a comment."""
    out: list[str] = []
    for (kind, value), blank in zip(tokens, spaced, strict=True):
        if kind == "comment" or (kind == "special" and value != "."):
            continue
        out.append((" " if blank and out else "") + value)
    text = "".join(out).strip()
    return text or None


def _addr_spec(tokens: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """(mailbox, host) of ``local@domain``; a missing domain gives an empty host."""
    tokens = [t for t in tokens if t[0] != "comment"]
    at = max((i for i, t in enumerate(tokens) if t == ("special", "@")), default=-1)
    local_tokens = tokens[:at] if at >= 0 else tokens
    local = "".join(value for kind, value in local_tokens if kind != "special" or value == ".")
    if at < 0:
        return (local or None), ("" if local else None)
    host = "".join(value for _kind, value in tokens[at + 1 :])
    return (local or None), host


class _AddressParser:
    def __init__(self, text: str) -> None:
        self.tokens, self.spaced = _tokenize(text)
        self.pos = 0

    def phrase(self, start: int, end: int) -> str | None:
        return _phrase(self.tokens[start:end], self.spaced[start:end])

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse_list(self, stop: str | None = None) -> list[list[Any]]:
        out: list[list[Any]] = []
        while self.pos < len(self.tokens):
            if stop and self.peek() == ("special", stop):
                self.pos += 1
                break
            if self.peek() == ("special", ","):
                self.pos += 1
                continue
            out.extend(self.parse_one(stop))
        return out

    def parse_one(self, stop: str | None) -> list[list[Any]]:
        start = self.pos
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            if tok in (("special", ","), ("special", "<")) or (stop and tok == ("special", stop)):
                break
            if tok == ("special", ":") and stop is None:
                name = self.phrase(start, self.pos)
                self.pos += 1
                members = self.parse_list(stop=";")
                return [[None, None, name, None], *members, [None, None, None, None]]
            self.pos += 1
        collected = self.tokens[start : self.pos]
        if self.peek() == ("special", "<"):
            self.pos += 1
            inner_start = self.pos
            while self.pos < len(self.tokens) and self.tokens[self.pos] != ("special", ">"):
                self.pos += 1
            inner = self.tokens[inner_start : self.pos]
            self.pos += 1
            # Anything after '>' up to the next comma is junk (or a comment already dropped).
            while (
                self.pos < len(self.tokens)
                and self.tokens[self.pos] != ("special", ",")
                and not (stop and self.tokens[self.pos] == ("special", stop))
            ):
                self.pos += 1
            route = None
            if ("special", ":") in inner:
                colon = inner.index(("special", ":"))
                route = "".join(v for k, v in inner[:colon] if k != "comment") or None
                inner = inner[colon + 1 :]
            mailbox, host = _addr_spec(inner)
            return [[self.phrase(start, start + len(collected)), route, mailbox, host]]
        if all(kind == "comment" for kind, _value in collected):
            return []
        mailbox, host = _addr_spec(collected)
        # user@domain (Real Name): the old form's comment is the display name, as Dovecot gives it
        # (the last comment after the address starts; one before it is not the address's).
        start_at = next(i for i, (kind, _value) in enumerate(collected) if kind != "comment")
        comments = [
            value.strip()
            for kind, value in collected[start_at:]
            if kind == "comment" and value.strip()
        ]
        return [[comments[-1] if comments else None, None, mailbox, host]]


def parse_addresses(value: str | None) -> list[list[Any]] | None:
    """An RFC 3501 address list ``((name adl mailbox host) ...)``, or None for an empty field."""
    if value is None:
        return None
    addresses = _AddressParser(value).parse_list()
    return addresses or None


def first_address(value: str | None) -> str:
    """``mailbox@host`` of the first address of a field, lower-cased; empty when there is none."""
    for name, _adl, mailbox, host in parse_addresses(value) or []:
        del name
        if mailbox and host:
            return f"{mailbox}@{host}".lower()
    return ""
