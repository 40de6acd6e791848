"""How the hub reads header blocks: ``email.policy.default`` with parsed values remembered,
and a direct reader for plainly written blocks that gives the same values.

``policy.default`` parses a structured header (Content-Type...) every time it
is read, and the feed parser reads each part's Content-Type several times
while it splits a message, so most of a parse went into parsing the same
few header values again. Parsed headers are immutable ``str`` subclasses, so
one parse can serve every read of the same (name, value); the cache is small
and emptied when full.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any

CACHE_SIZE = 2048
_parsed: dict[tuple[str, str], Any] = {}


class CachedHeaderPolicy(EmailPolicy):
    """``EmailPolicy`` (the default policy's settings) whose header parsing is memoised."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value  # already a parsed header object
        key = (name, value)
        found = _parsed.get(key)
        if found is None:
            found = super().header_fetch_parse(name, value)
            if len(_parsed) >= CACHE_SIZE:
                _parsed.clear()
            _parsed[key] = found
        return found


CACHED_DEFAULT = CachedHeaderPolicy()
PARSER = BytesParser(policy=CACHED_DEFAULT)


def part_filename(part: Message) -> str:
    """A part's file name, or "" when it has none or the email package cannot decode it.

    An RFC 2231 ``filename*`` whose charset is not a codec name (a NUL in it, found
    by the fuzzer) makes ``get_filename`` raise ValueError or LookupError: such a
    name names nothing.
    """
    try:
        return part.get_filename() or ""
    except (ValueError, LookupError):
        return ""


# --- plain header blocks, read without the email package ----------------------------------
#
# Most messages the hub receives are written plainly: CRLF lines, ASCII field names, values
# without encoded-words, comments or quoting. For those, the fields and the Content-Type can
# be read directly and give exactly what the email package gives; anything else returns None
# and the caller asks the email package (tests/test_plain_headers.py runs both on a corpus).

_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")  # the feed parser's field name, then ":"
_WS = r"[ \t\r\n]*"
# RFC 2045 tokens without "*", "'" and "%": policy.default reads those as RFC 2231 syntax
_TOKEN = r"[!#$&+\-.^_`{|}~0-9A-Za-z]+"
_QUOTED = r'"[\t\x20\x21\x23-\x5b\x5d-\x7e]*"'  # a quoted-string without quoted-pairs
_PARAM = re.compile(rf";{_WS}({_TOKEN}){_WS}={_WS}({_TOKEN}|{_QUOTED}){_WS}")
_MEDIA_TYPE = re.compile(rf"{_WS}({_TOKEN}/{_TOKEN}){_WS}")


def header_fields(head: bytes) -> list[tuple[str, str]] | None:
    """The fields of a header block as the email package stores them (name, folded value).

    ``head`` ends with its empty line, as ``mss.crypto.smime.split_head`` cuts it. None when
    the block has anything the feed parser treats specially: a bare CR or LF, an empty or
    continuation first line, a line that is not a field, an mbox ``From `` line.
    """
    crlf = head.count(b"\r\n")
    if not head.endswith(b"\r\n\r\n") or head.count(b"\r") != crlf or head.count(b"\n") != crlf:
        return None
    fields: list[tuple[str, str]] = []
    name = value = b""
    for line in head[:-4].split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not name:
                return None
            value += b"\r\n" + line
            continue
        found = _FIELD_NAME.match(line)
        if found is None:  # not a field (an mbox "From " line included)
            return None
        if name:
            fields.append((name.decode("ascii"), value.decode("ascii", "surrogateescape")))
        name, value = line[: found.end() - 1], line[found.end() :].lstrip(b" \t")
    if name:
        fields.append((name.decode("ascii"), value.decode("ascii", "surrogateescape")))
    return fields


def plain_content_type(fields: list[tuple[str, str]]) -> tuple[str, dict[str, str]] | None:
    """``get_content_type()`` and the ``get_param()`` values for a plainly written Content-Type.

    Parameter names are in lower case, the first of a repeated name wins. None when the
    value needs the email package (RFC 2231, quoted-pairs, comments, non-ASCII...).
    """
    value = next((v for n, v in fields if n.lower() == "content-type"), None)
    if value is None:
        return "text/plain", {}
    media = _MEDIA_TYPE.match(value)
    if media is None:
        return None
    params: dict[str, str] = {}
    at = media.end()
    while at < len(value):
        param = _PARAM.match(value, at)
        if param is None:
            return None
        name, text = param.groups()
        params.setdefault(name.lower(), text[1:-1] if text.startswith('"') else text)
        at = param.end()
    return media[1].lower(), params
