"""Slice ``BODY[section]`` out of the raw bytes with the part offsets stored at delivery.

Nothing here parses a message: the offset tree built by
:func:`mss.mailbox.structure.describe` says where every part, header and
body starts and ends (RFC 3501 section 6.4.5 for the section syntax).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mss.mailbox.imap.wire import BadCommand

_SECTION = re.compile(
    r"^((?:[1-9]\d{0,8})(?:\.[1-9]\d{0,8})*)?(?:\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME))?"
    r"(?:\s*\((.*)\))?$",
    re.IGNORECASE | re.DOTALL,
)
_FIELD_LINE = re.compile(rb"[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*(?:\r?\n|$)")


@dataclass(frozen=True)
class Section:
    """A parsed section: part numbers, the text part (``""``, HEADER, TEXT, MIME...) and header
    fields."""

    numbers: tuple[int, ...]
    text: str
    fields: tuple[str, ...]
    spelled: str  # as it goes back in the response, between the brackets

    @classmethod
    def parse(cls, spec: str) -> Section:
        match = _SECTION.match(spec.strip())
        if match is None or (spec.strip() and match.group(0) == ""):
            raise BadCommand(f"invalid section [{spec}]")
        numbers_text, text, fields_text = match.groups()
        numbers = tuple(int(n) for n in numbers_text.split(".")) if numbers_text else ()
        text = (text or "").upper()
        if numbers_text and spec.strip()[len(numbers_text) :][:1] not in ("", "."):
            raise BadCommand(f"invalid section [{spec}]")
        fields: tuple[str, ...] = ()
        if text.startswith("HEADER.FIELDS"):
            if fields_text is None:
                raise BadCommand("HEADER.FIELDS needs a list of field names")
            fields = tuple(f.strip('"') for f in fields_text.split())
            if not fields:
                raise BadCommand("HEADER.FIELDS needs at least one field name")
        elif fields_text is not None:
            raise BadCommand(f"invalid section [{spec}]")
        if text == "MIME" and not numbers:
            raise BadCommand("MIME needs a part number")
        spelled = ".".join(str(n) for n in numbers)
        if text:
            spelled = f"{spelled}.{text}" if spelled else text
        if fields:
            spelled += " (" + " ".join(fields) + ")"
        return cls(numbers, text, fields, spelled)


def _children(node: dict[str, Any], is_message: bool) -> list[tuple[dict[str, Any], bool]]:
    """The numbered parts under a node (RFC 3501 §6.4.5), each flagged when it is a whole message.

    A multipart's parts are its children. A non-multipart message has one part, its body,
    which is the node itself seen as a body part: when that body is message/rfc822, part 1
    is the whole encapsulated message and 1.1 is that message's first part. A
    message/rfc822 body part numbers its children as the message it encapsulates does.
    """
    if "parts" in node:
        return [(child, False) for child in node["parts"]]
    if is_message:
        return [(node, False)]
    if "msg" in node:
        return _children(node["msg"], True)
    return []


def _filter_fields(block: bytes, names: tuple[str, ...], keep: bool) -> bytes:
    wanted = {n.lower().encode("ascii", "replace") for n in names}
    out = []
    for match in _FIELD_LINE.finditer(block):
        line = match.group(0)
        if not line or line in (b"\r\n", b"\n"):
            continue
        name = line.split(b":", 1)[0].strip().lower()
        if (name in wanted) == keep:
            out.append(line if line.endswith(b"\n") else line + b"\r\n")
    return b"".join(out) + b"\r\n"


def section_bytes(raw: bytes, parts: dict[str, Any], section: Section) -> bytes:
    """The bytes a section names; an absent part gives empty bytes (as servers commonly do)."""
    node, is_message = parts, True
    for number in section.numbers:
        children = _children(node, is_message)
        if number > len(children):
            return b""
        node, is_message = children[number - 1]
    text = section.text
    if text == "":
        return raw if not section.numbers else raw[node["b"] : node["e"]]
    if text == "MIME":
        return raw[node["h"] : node["b"]]
    if section.numbers:
        # n.HEADER and n.TEXT name the header and body of the message that part n encapsulates.
        if "msg" not in node:
            return b""
        node = node["msg"]
    if text == "HEADER":
        return raw[node["h"] : node["b"]]
    if text == "TEXT":
        return raw[node["b"] : node["e"]]
    return _filter_fields(raw[node["h"] : node["b"]], section.fields, keep=text == "HEADER.FIELDS")
