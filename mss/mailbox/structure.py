"""What IMAP needs from a message, computed once at delivery.

``describe(raw)`` walks the MIME tree of the exact raw bytes and returns
:class:`MessageStructure`: the ENVELOPE, BODY and BODYSTRUCTURE as JSON-able
nested lists in RFC 3501 order (``None`` is NIL), and a tree of part
offsets so that FETCH can slice ``BODY[1.2]``, ``BODY[1.MIME]`` or
``BODY[2.HEADER]`` out of the raw bytes without parsing the message again.

A part node of the offset tree is a dict::

    {"h": header start, "b": body start, "e": end,
     "parts": [child nodes] (multipart only),
     "msg": encapsulated message node (message/rfc822 only),
     "type": "text/plain", "charset": "utf-8", "enc": "base64",
     "name": "CR.pdf" (a leaf with a file name only)}

Offsets are into the raw message; the top node is the whole message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.errors
import email.message
import email.utils
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mss.mailbox.headers import (
    decode_words,
    first,
    first_address,
    header_end,
    parse_addresses,
    split_headers,
)

# deeper MIME nesting is treated as an opaque leaf (no recursion bomb); the gateway refuses it
MAX_DEPTH = 50


@dataclass
class ContentType:
    """A parsed Content-Type (or Content-Disposition) value; params keep their raw names."""

    maintype: str
    subtype: str
    params: list[tuple[str, str]] = field(default_factory=list)

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key.lower() == name.lower():
                return value
        return None

    def imap_params(self) -> list[str] | None:
        flat = [item for pair in self.params for item in pair]
        return flat or None


@dataclass
class MessageStructure:
    """Everything the store and IMAP keep about a message besides its raw bytes.

    Part of the one reading of a message (``mss.message.Message.structure``).
    """

    size: int
    headers_text: str
    message_id: str
    subject: str
    from_address: str
    sent_date: dt.date | None
    envelope: list[Any]
    body: list[Any]
    bodystructure: list[Any]
    parts: dict[str, Any]
    too_deep: bool = (
        False  # a multipart or message part sits MAX_DEPTH levels down and was not opened
    )

    def structure_column(self) -> dict[str, Any]:
        """The JSON stored in ``messages.bodystructure``."""
        return {"body": self.body, "bodystructure": self.bodystructure, "parts": self.parts}


_PARAM = re.compile(r'\s*;\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)', re.DOTALL)
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")


def parse_content_type(value: str | None, default: str = "text/plain") -> ContentType:
    """Type, subtype and parameters; a missing or broken type falls back to ``default``."""
    text = _COMMENT.sub("", value or "").strip()
    head, _, rest = text.partition(";")
    maintype, slash, subtype = head.strip().partition("/")
    if not slash or not maintype.strip() or not subtype.strip():
        maintype, _, subtype = default.partition("/")
        if not value:
            rest = "charset=us-ascii" if default == "text/plain" else ""
    params: list[tuple[str, str]] = []
    for match in _PARAM.finditer(";" + rest):
        raw_value = match.group(2)
        if raw_value.startswith('"'):
            raw_value = re.sub(r"\\(.)", r"\1", raw_value[1:-1])
        params.append((match.group(1), raw_value))
    return ContentType(maintype.strip(), subtype.strip(), params)


def _disposition(value: str | None) -> list[Any] | None:
    if not value:
        return None
    text = _COMMENT.sub("", value).strip()
    kind, _, rest = text.partition(";")
    if not kind.strip():
        return None
    parsed = parse_content_type(f"x/x;{rest}")
    return [kind.strip(), parsed.imap_params()]


def _language(value: str | None) -> Any:
    if not value:
        return None
    tags = [t.strip() for t in _COMMENT.sub("", value).split(",") if t.strip()]
    if not tags:
        return None
    return tags[0] if len(tags) == 1 else tags


_NOT_PLAIN_PARAM = re.compile(r"[*\\(]|=\?")  # RFC 2231, quoted-pairs, comments, encoded words


def part_filename(ctype: ContentType, fields: list[tuple[str, str]]) -> str:
    """A part's file name as ``EmailMessage.get_filename`` reads it, or "" (none, or undecodable).

    Content-Disposition's ``filename``, else Content-Type's ``name``. Plainly written values
    are read here; RFC 2231 (``filename*``), quoted-pairs, comments and encoded words are
    left to the email package's header parser (the two fields only: no message is parsed).
    """
    disposition = first(fields, "Content-Disposition") or ""
    content_type = first(fields, "Content-Type") or ""
    if "name" not in disposition.lower() and "name" not in content_type.lower():
        return ""
    if _NOT_PLAIN_PARAM.search(disposition) or _NOT_PLAIN_PARAM.search(content_type):
        return _email_package_filename(fields)
    found = parse_content_type(f"x/x;{disposition.partition(';')[2]}").param("filename")
    if found is None:
        found = ctype.param("name")
    return (found or "").strip()


def _email_package_filename(fields: list[tuple[str, str]]) -> str:
    from mss.email_policy import CACHED_DEFAULT
    from mss.email_policy import part_filename as email_filename

    part = email.message.EmailMessage(policy=CACHED_DEFAULT)
    try:
        for name, value in fields:
            if name.lower() in ("content-type", "content-disposition"):
                part.set_raw(*CACHED_DEFAULT.header_source_parse([f"{name}: {value}\r\n"]))
        return email_filename(part).strip()
    except (IndexError, AttributeError, TypeError, RecursionError, email.errors.MessageError):
        return ""  # what the header parser lets through on hostile values names nothing


def _lines(raw: bytes, start: int, end: int) -> int:
    count = raw.count(b"\n", start, end)
    if end > start and raw[end - 1 : end] != b"\n":
        count += 1
    return count


def _split_multipart(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """(start, end) of each body part between ``--boundary`` lines, per RFC 2046 section 5.1.1."""
    delimiter = b"--" + boundary
    positions: list[tuple[int, int, bool]] = []  # (line start, after line, is close delimiter)
    pos = start
    while pos < end:
        found = raw.find(delimiter, pos, end)
        if found < 0:
            break
        at_line_start = found == start or raw[found - 1 : found] == b"\n"
        after = found + len(delimiter)
        if at_line_start:
            closing = raw.startswith(b"--", after)
            eol = raw.find(b"\n", after, end)
            positions.append((found, end if eol < 0 else eol + 1, closing))
            if closing:
                break
            pos = end if eol < 0 else eol + 1
        else:
            pos = after
    parts: list[tuple[int, int]] = []
    for index, (_line, after, closing) in enumerate(positions):
        if closing:
            break
        if index + 1 == len(positions):
            parts.append((min(after, end), end))  # no close delimiter: the part runs to the end
            break
        part_end = positions[index + 1][0]
        # The line break before a delimiter belongs to the delimiter.
        if part_end > after and raw[part_end - 1 : part_end] == b"\n":
            part_end -= 1
            if part_end > after and raw[part_end - 1 : part_end] == b"\r":
                part_end -= 1
        parts.append((after, max(after, part_end)))
    return parts


class _Walker:
    """Builds BODY, BODYSTRUCTURE and the offset tree in one pass over the raw bytes."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.too_deep = False

    def entity(
        self, start: int, end: int, default_type: str, depth: int
    ) -> tuple[list[Any], list[Any], dict[str, Any]]:
        raw = self.raw
        body_start = header_end(raw, start, end)
        fields = split_headers(raw[start:body_start])
        ctype = parse_content_type(first(fields, "Content-Type"), default_type)
        node: dict[str, Any] = {
            "h": start,
            "b": body_start,
            "e": end,
            "type": f"{ctype.maintype}/{ctype.subtype}".lower(),
        }
        boundary = ctype.param("boundary")
        if ctype.maintype.lower() == "multipart" and depth < MAX_DEPTH and boundary:
            return self.multipart(ctype, fields, node, body_start, end, boundary, depth)
        if ctype.maintype.lower() == "multipart" and boundary:
            self.too_deep = True
        if ctype.maintype.lower() == "multipart":
            # A multipart without a boundary cannot be split: clients see plain text.
            ctype = ContentType("text", "plain", [("charset", "us-ascii")])
            node["type"] = "text/plain"
        return self.leaf(ctype, fields, node, body_start, end, depth)

    def multipart(
        self,
        ctype: ContentType,
        fields: list[tuple[str, str]],
        node: dict[str, Any],
        body_start: int,
        end: int,
        boundary: str,
        depth: int,
    ) -> tuple[list[Any], list[Any], dict[str, Any]]:
        child_default = "message/rfc822" if ctype.subtype.lower() == "digest" else "text/plain"
        spans = _split_multipart(self.raw, body_start, end, boundary.encode("utf-8", "replace"))
        if not spans:
            spans = [(end, end)]  # IMAP needs at least one part: an empty text/plain one
        bodies: list[list[Any]] = []
        structures: list[list[Any]] = []
        children: list[dict[str, Any]] = []
        for part_start, part_end in spans:
            body, structure, child = self.entity(part_start, part_end, child_default, depth + 1)
            bodies.append(body)
            structures.append(structure)
            children.append(child)
        node["parts"] = children
        extension = [
            ctype.subtype,
            ctype.imap_params(),
            _disposition(first(fields, "Content-Disposition")),
            _language(first(fields, "Content-Language")),
            first(fields, "Content-Location"),
        ]
        return [*bodies, ctype.subtype], [*structures, *extension], node

    def leaf(
        self,
        ctype: ContentType,
        fields: list[tuple[str, str]],
        node: dict[str, Any],
        body_start: int,
        end: int,
        depth: int,
    ) -> tuple[list[Any], list[Any], dict[str, Any]]:
        encoding = (first(fields, "Content-Transfer-Encoding") or "7BIT").strip() or "7BIT"
        node["enc"] = encoding.lower()
        charset = ctype.param("charset")
        if charset:
            node["charset"] = charset.lower()
        name = part_filename(ctype, fields)
        if name:
            node["name"] = name
        basic = [
            ctype.maintype,
            ctype.subtype,
            ctype.imap_params(),
            first(fields, "Content-ID"),
            first(fields, "Content-Description"),
            encoding,
            end - body_start,
        ]
        body, structure = list(basic), list(basic)
        kind = node["type"]
        if kind in ("message/rfc822", "message/global") and depth < MAX_DEPTH:
            inner_body, inner_structure, inner_node = self.entity(
                body_start, end, "text/plain", depth + 1
            )
            node["msg"] = inner_node
            envelope = build_envelope(split_headers(self.raw[body_start : inner_node["b"]]))
            lines = _lines(self.raw, body_start, end)
            body += [envelope, inner_body, lines]
            structure += [envelope, inner_structure, lines]
        elif kind in ("message/rfc822", "message/global"):
            self.too_deep = True
        elif ctype.maintype.lower() == "text":
            lines = _lines(self.raw, body_start, end)
            body.append(lines)
            structure.append(lines)
        structure += [
            first(fields, "Content-MD5"),
            _disposition(first(fields, "Content-Disposition")),
            _language(first(fields, "Content-Language")),
            first(fields, "Content-Location"),
        ]
        return body, structure, node


def leaves(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every leaf part of an offset tree, in order, attached messages' parts included."""
    if "parts" in node:
        for child in node["parts"]:
            yield from leaves(child)
    elif "msg" in node:
        yield from leaves(node["msg"])
    else:
        yield node


def decoded_body(raw: bytes, node: dict[str, Any]) -> bytes:
    """The body of a leaf part with its transfer encoding undone; ValueError when it cannot be."""
    data = raw[node["b"] : node["e"]]
    encoding = node.get("enc", "7bit")
    try:
        if encoding == "base64":
            return base64.b64decode(b"".join(data.split()), validate=False)
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the {encoding} body cannot be decoded: {exc}") from None
    return data


def build_envelope(fields: list[tuple[str, str]]) -> list[Any]:
    """The RFC 3501 ENVELOPE: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to,
    message-id."""
    from_ = parse_addresses(first(fields, "From"))
    sender = parse_addresses(first(fields, "Sender")) or from_
    reply_to = parse_addresses(first(fields, "Reply-To")) or from_
    return [
        first(fields, "Date") or None,
        first(fields, "Subject"),
        from_,
        sender,
        reply_to,
        parse_addresses(first(fields, "To")),
        parse_addresses(first(fields, "Cc")),
        parse_addresses(first(fields, "Bcc")),
        first(fields, "In-Reply-To") or None,
        first(fields, "Message-ID") or None,
    ]


def _sent_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def searchable_headers(fields: list[tuple[str, str]]) -> str:
    """The header block as ``Name: decoded value`` lines, for SEARCH HEADER/FROM/SUBJECT."""
    return "".join(f"{name}: {decode_words(value)}\n" for name, value in fields)


def describe(raw: bytes) -> MessageStructure:
    """Compute, once, every fact IMAP FETCH and SEARCH need from the raw bytes of a message."""
    walker = _Walker(raw)
    body, structure, parts = walker.entity(0, len(raw), "text/plain", 0)
    fields = split_headers(raw[: parts["b"]])
    subject = first(fields, "Subject") or ""
    return MessageStructure(
        size=len(raw),
        headers_text=searchable_headers(fields),
        message_id=(first(fields, "Message-ID") or "").strip()[:998],
        subject=decode_words(subject),
        from_address=first_address(first(fields, "From"))[:320],
        sent_date=_sent_date(first(fields, "Date")),
        envelope=build_envelope(fields),
        body=body,
        bodystructure=structure,
        parts=parts,
        too_deep=walker.too_deep,
    )
