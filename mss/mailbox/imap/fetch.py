"""FETCH: which data items a client asked for, and how each is rendered from stored facts.

Items that only need flags, UIDs and mod-sequences are served from the
session's view; the others read the stored columns (ENVELOPE and
BODYSTRUCTURE were computed at delivery) and, for ``BODY[...]``, slice
the raw bytes with the stored part offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mss.mailbox.imap.parser import format_date_time
from mss.mailbox.imap.sections import Section, section_bytes
from mss.mailbox.imap.wire import Atom, BadCommand, Literal, Token, as_number, render
from mss.mailbox.models import StoredMessage

_MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"],
}
_SIMPLE = {
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
    "UID",
    "MODSEQ",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
}
_BODY_ITEM = re.compile(
    r"^(BODY|BODY\.PEEK|BINARY\.PEEK|BINARY)\[(.*)\](?:<(\d+)\.(\d+)>)?$", re.IGNORECASE | re.DOTALL
)


@dataclass(frozen=True)
class BodyItem:
    """``BODY[section]<start.count>`` (``peek`` leaves \\Seen alone)."""

    section: Section
    peek: bool
    start: int | None
    count: int | None

    @property
    def response_name(self) -> str:
        suffix = f"<{self.start}>" if self.start is not None else ""
        return f"BODY[{self.section.spelled}]{suffix}"


@dataclass
class FetchRequest:
    """The data items of one FETCH, in the client's order, and its modifiers."""

    items: list[str | BodyItem] = field(default_factory=list)
    changed_since: int | None = None
    vanished: bool = False

    @property
    def sets_seen(self) -> bool:
        return any(
            (isinstance(i, BodyItem) and not i.peek) or i in ("RFC822", "RFC822.TEXT")
            for i in self.items
        )

    @property
    def needs_message(self) -> bool:
        return any(i not in ("FLAGS", "UID", "MODSEQ") for i in self.items)

    def columns(self) -> list[Any]:
        wanted: list[Any] = []
        names = {i for i in self.items if isinstance(i, str)}
        if "INTERNALDATE" in names:
            wanted.append(StoredMessage.internal_date)
        if "RFC822.SIZE" in names:
            wanted.append(StoredMessage.size)
        if "ENVELOPE" in names:
            wanted.append(StoredMessage.envelope)
        if names & {"BODY", "BODYSTRUCTURE"} or self.needs_raw:
            wanted.append(StoredMessage.bodystructure)
        if self.needs_raw:
            wanted.append(StoredMessage.raw)
        return wanted

    @property
    def needs_raw(self) -> bool:
        return any(
            isinstance(i, BodyItem) or i in ("RFC822", "RFC822.HEADER", "RFC822.TEXT")
            for i in self.items
        )


def _parse_item(token: Token) -> str | BodyItem:
    if not isinstance(token, Atom):
        raise BadCommand("FETCH data items are atoms")
    upper = token.upper()
    if upper in _SIMPLE:
        return upper
    match = _BODY_ITEM.match(token)
    if match is None:
        raise BadCommand(f"unknown FETCH data item {token}")
    kind, spec, start, count = match.groups()
    if kind.upper().startswith("BINARY"):
        raise BadCommand("BINARY is not supported; use BODY[...]")
    if count is not None and int(count) == 0:
        raise BadCommand("a partial fetch needs a count above 0")
    return BodyItem(
        Section.parse(spec),
        kind.upper() == "BODY.PEEK",
        int(start) if start is not None else None,
        int(count) if count is not None else None,
    )


def parse_fetch(args: list[Token], *, uid: bool) -> FetchRequest:
    """The items after the sequence set: a macro, one item, or a list; then optional modifiers."""
    if not args:
        raise BadCommand("FETCH needs data items")
    request = FetchRequest()
    spec = args[0]
    if isinstance(spec, Atom) and spec.upper() in _MACROS:
        request.items = list(_MACROS[spec.upper()])
    elif isinstance(spec, list):
        if not spec:
            raise BadCommand("FETCH needs at least one data item")
        request.items = [_parse_item(t) for t in spec]
    else:
        request.items = [_parse_item(spec)]
    if len(args) > 1:
        modifiers = args[1]
        if len(args) > 2 or not isinstance(modifiers, list):
            raise BadCommand("unexpected arguments after the FETCH data items")
        i = 0
        while i < len(modifiers):
            name = str(modifiers[i]).upper()
            if name == "CHANGEDSINCE" and i + 1 < len(modifiers):
                request.changed_since = as_number(modifiers[i + 1], "CHANGEDSINCE")
                i += 2
            elif name == "VANISHED" and uid:
                request.vanished = True
                i += 1
            else:
                raise BadCommand(f"unknown FETCH modifier {name}")
        if request.vanished and request.changed_since is None:
            raise BadCommand("VANISHED needs CHANGEDSINCE")
    if uid and "UID" not in request.items:
        request.items.insert(0, "UID")
    if request.changed_since is not None and "MODSEQ" not in request.items:
        request.items.append("MODSEQ")
    return request


def render_flags(flags: frozenset[str] | set[str]) -> bytes:
    return b"(" + " ".join(sorted(flags, key=lambda f: (not f.startswith("\\"), f))).encode() + b")"


def render_fetch(
    seq: int,
    uid: int,
    flags: frozenset[str],
    modseq: int,
    request: FetchRequest,
    row: Any | None,
    *,
    add_flags: bool = False,
) -> bytes:
    """One ``* n FETCH (...)`` response line (with literals) for one message."""
    out: list[bytes] = []
    items = list(request.items)
    if add_flags and "FLAGS" not in items:
        items.append("FLAGS")
    for item in items:
        if item == "FLAGS":
            out.append(b"FLAGS " + render_flags(flags))
        elif item == "UID":
            out.append(b"UID %d" % uid)
        elif item == "MODSEQ":
            out.append(b"MODSEQ (%d)" % modseq)
        else:
            rendered = _message_item(item, row)
            if rendered is not None:
                out.append(rendered)
    return b"* %d FETCH (" % seq + b" ".join(out) + b")\r\n"


_MESSAGE_ITEMS = frozenset(
    {"INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822"}
    | {"RFC822.HEADER", "RFC822.TEXT"}
)


def _message_item(item: str | BodyItem, row: Any | None) -> bytes | None:
    """One FETCH item read from the stored message (raw bytes, structure, envelope, sizes);
    None for an item this renderer does not know."""
    if not isinstance(item, BodyItem) and item not in _MESSAGE_ITEMS:
        return None
    if row is None:  # the caller loads the message whenever an item needs it
        raise ValueError(f"FETCH {item} needs the message, which was not loaded")
    if isinstance(item, BodyItem):
        data = section_bytes(row.raw, row.bodystructure["parts"], item.section)
        if item.start is not None:
            data = data[item.start : item.start + (item.count or 0)]
        return item.response_name.encode() + b" " + render(Literal(data))
    if item == "INTERNALDATE":
        return b"INTERNALDATE " + render(format_date_time(row.internal_date))
    if item == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % row.size
    if item == "ENVELOPE":
        return b"ENVELOPE " + render(row.envelope)
    if item == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + render(row.bodystructure["bodystructure"])
    if item == "BODY":
        return b"BODY " + render(row.bodystructure["body"])
    if item == "RFC822":
        return b"RFC822 " + render(Literal(row.raw))
    parts = row.bodystructure["parts"]
    if item == "RFC822.HEADER":
        return b"RFC822.HEADER " + render(Literal(row.raw[parts["h"] : parts["b"]]))
    return b"RFC822.TEXT " + render(Literal(row.raw[parts["b"] : parts["e"]]))
