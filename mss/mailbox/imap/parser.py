"""Tokenise one complete IMAP command (its lines and literals, as received) into values.

The server's reader hands over the exact bytes of a command, literals
included (``{5}\\r\\nhello``), so this module never does I/O.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, field

from mss.mailbox.imap.wire import Atom, BadCommand, Token, as_text

_ATOM_END = frozenset(b' ()"\r\n')
_LITERAL = re.compile(rb"\{(\d{1,12})(\+?)\}\r?\n")
_TAG = re.compile(r"^[\x21-\x7e]+$")
# "[" is an ordinary ATOM-CHAR (RFC 3501 §9); only after these FETCH item names does it open a
# section that may hold spaces and parentheses: BODY[HEADER.FIELDS (A B)], BINARY.PEEK[1]
_SECTION_ITEMS = frozenset({"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"})
MAX_NESTING = 64  # parenthesised lists in a command, and SEARCH criteria (parentheses, NOT, OR)


@dataclass
class Command:
    """A tagged command: its tag, upper-cased name (``UID FETCH`` for UID commands) and
    arguments."""

    tag: str
    name: str
    args: list[Token]


class _Tokenizer:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def tokens(self, depth: int = 0) -> list[Token]:
        out: list[Token] = []
        data = self.data
        while True:
            while self.pos < len(data) and data[self.pos] == 0x20:
                self.pos += 1
            if self.pos >= len(data) or data[self.pos] in (0x0D, 0x0A):
                if depth:
                    raise BadCommand("unbalanced parenthesis")
                return out
            byte = data[self.pos]
            if byte == 0x28:  # (
                if depth >= MAX_NESTING:
                    raise BadCommand(f"parenthesised lists nested too deeply (limit {MAX_NESTING})")
                self.pos += 1
                out.append(self.tokens(depth + 1))
            elif byte == 0x29:  # )
                if not depth:
                    raise BadCommand("unexpected ')'")
                self.pos += 1
                return out
            elif byte == 0x22:  # "
                out.append(self.quoted())
            elif byte == 0x7B:  # {
                out.append(self.literal())
            else:
                out.append(self.atom())

    def quoted(self) -> bytes:
        data, i = self.data, self.pos + 1
        buf = bytearray()
        while i < len(data):
            b = data[i]
            if b == 0x5C and i + 1 < len(data):
                buf.append(data[i + 1])
                i += 2
                continue
            if b == 0x22:
                self.pos = i + 1
                return bytes(buf)
            if b in (0x0D, 0x0A):
                break
            buf.append(b)
            i += 1
        raise BadCommand("unterminated quoted string")

    def literal(self) -> bytes:
        match = _LITERAL.match(self.data, self.pos)
        if match is None:
            raise BadCommand("malformed literal")
        size = int(match.group(1))
        start = match.end()
        if start + size > len(self.data):
            raise BadCommand("truncated literal")
        self.pos = start + size
        return self.data[start : start + size]

    def atom(self) -> Atom:
        data, i = self.data, self.pos
        while i < len(data):
            b = data[i]
            if (
                b == 0x5B
                and data[self.pos : i].upper().decode("ascii", "replace") in _SECTION_ITEMS
            ):
                close = data.find(b"]", i)
                if close < 0 or b"\r" in data[i:close] or b"\n" in data[i:close]:
                    raise BadCommand("missing ']' at the end of the section")
                i = close + 1
                continue
            if b in _ATOM_END or b < 0x20 or b == 0x7F:
                break
            i += 1
        if i == self.pos:
            raise BadCommand(f"unexpected character {chr(data[i])!r}")
        text = data[self.pos : i]
        self.pos = i
        try:
            return Atom(text.decode("ascii"))
        except UnicodeDecodeError:
            raise BadCommand("8-bit characters are only allowed in strings") from None


def parse_command(data: bytes) -> Command:
    """Split a command into tag, name and arguments; raises BadCommand (with the tag when known)."""
    tokenizer = _Tokenizer(data)
    tokens = tokenizer.tokens()
    if (
        not tokens
        or not isinstance(tokens[0], Atom)
        or not _TAG.match(tokens[0])
        or "+" in tokens[0]
    ):
        raise BadCommand("a command starts with a tag")
    tag = str(tokens[0])
    if len(tokens) < 2 or not isinstance(tokens[1], Atom):
        raise _tagged(tag, "missing command name")
    name = tokens[1].upper()
    args = tokens[2:]
    if name == "UID":
        if not args or not isinstance(args[0], Atom):
            raise _tagged(tag, "UID needs a command")
        name = f"UID {args[0].upper()}"
        args = args[1:]
    return Command(tag, name, args)


class TaggedBad(BadCommand):
    """A BAD whose tag is known."""

    def __init__(self, tag: str, sentence: str) -> None:
        super().__init__(sentence)
        self.tag = tag


def _tagged(tag: str, sentence: str) -> TaggedBad:
    return TaggedBad(tag, sentence)


def tag_of(data: bytes) -> str:
    """Best-effort tag of a command that could not be parsed, for the BAD reply."""
    head = data.split(b" ", 1)[0].strip()
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return "*"
    return text if text and _TAG.match(text) and "+" not in text else "*"


# --- sequence sets ---

_SEQ_RANGE = re.compile(r"^(\d+|\*)(?::(\d+|\*))?$")


@dataclass(frozen=True)
class SequenceSet:
    """``1:4,7,9:*`` as ranges; ``None`` stands for ``*``."""

    ranges: tuple[tuple[int | None, int | None], ...]
    _intervals: dict[int, tuple[tuple[int, int], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def parse(cls, token: Token) -> SequenceSet:
        if not isinstance(token, Atom):
            raise BadCommand("expected a sequence set")
        ranges = []
        for item in token.split(","):
            match = _SEQ_RANGE.match(item)
            if not match:
                raise BadCommand(f"invalid sequence set {token!s}")
            lo = None if match.group(1) == "*" else int(match.group(1))
            hi_text = match.group(2) if match.group(2) is not None else match.group(1)
            hi = None if hi_text == "*" else int(hi_text)
            if lo == 0 or hi == 0:
                raise BadCommand("0 is not a valid message number or UID")
            ranges.append((lo, hi))
        return cls(tuple(ranges))

    def intervals(self, top: int) -> tuple[tuple[int, int], ...]:
        """The ranges as sorted, disjoint ``(low, high)`` intervals, ``*`` read as ``top``.

        A 64 KiB command holds 16,000 ranges (``1:*,1:*,...``): merged once, they cost no more
        than one, per message or per SEARCH candidate.
        """
        cached = self._intervals.get(top)
        if cached is not None:
            return cached
        spans = sorted(
            (min(a, b), max(a, b))
            for a, b in (
                (top if lo is None else lo, top if hi is None else hi) for lo, hi in self.ranges
            )
        )
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self._intervals.clear()
        self._intervals[top] = result = tuple(merged)
        return result

    def indexes_by_seq(self, count: int) -> list[int]:
        """0-based positions of the messages these sequence numbers name (out of range ones
        dropped)."""
        out: list[int] = []
        for lo, hi in self.intervals(count):
            out.extend(range(lo - 1, min(hi, count)))
        return out if count else []

    def indexes_by_uid(self, uids: list[int]) -> list[int]:
        """0-based positions in the sorted ``uids`` of the messages these UIDs name."""
        if not uids:
            return []
        out: list[int] = []
        for lo, hi in self.intervals(uids[-1]):
            out.extend(range(bisect.bisect_left(uids, lo), bisect.bisect_right(uids, hi)))
        return out

    def contains_uid(self, uid: int, top: int) -> bool:
        spans = self.intervals(top)
        at = (
            bisect.bisect_left(spans, (uid + 1, -1)) - 1
        )  # the last interval starting at or below uid
        return at >= 0 and spans[at][0] <= uid <= spans[at][1]


def format_uid_set(uids: list[int]) -> str:
    """Sorted UIDs as a compact set: ``1:3,7,9:10``."""
    parts: list[str] = []
    start = prev = None
    for uid in sorted(uids):
        if start is None:
            start = prev = uid
        elif uid == prev + 1:  # type: ignore[operator]
            prev = uid
        else:
            parts.append(f"{start}" if start == prev else f"{start}:{prev}")
            start = prev = uid
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}:{prev}")
    return ",".join(parts)


def format_uid_list(uids: list[int]) -> str:
    """UIDs in the given order, ranges only where consecutive (COPYUID pairs source and target)."""
    parts: list[str] = []
    i = 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        parts.append(str(uids[i]) if i == j else f"{uids[i]}:{uids[j]}")
        i = j + 1
    return ",".join(parts)


# --- dates and flags ---

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DATE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")
_DATE_TIME = re.compile(
    r"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$"
)


def _month(name: str) -> int:
    try:
        return [m.lower() for m in MONTHS].index(name.lower()) + 1
    except ValueError:
        raise BadCommand(f"unknown month {name!r}") from None


def parse_date(token: Token) -> dt.date:
    """A SEARCH date: ``1-Feb-2026``."""
    match = _DATE.match(as_text(token, "a date"))
    if not match:
        raise BadCommand("dates look like 1-Feb-2026")
    try:
        return dt.date(int(match.group(3)), _month(match.group(2)), int(match.group(1)))
    except ValueError:
        raise BadCommand("no such date") from None


def parse_date_time(token: Token) -> dt.datetime:
    """An APPEND date-time: ``"17-Jul-1996 02:44:25 -0700"``."""
    match = _DATE_TIME.match(as_text(token, "a date-time"))
    if not match:
        raise BadCommand('dates look like "17-Jul-1996 02:44:25 -0700"')
    day, mon, year, hh, mm, ss, sign, zh, zm = match.groups()
    offset = dt.timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
    try:
        return dt.datetime(
            int(year), _month(mon), int(day), int(hh), int(mm), int(ss), tzinfo=dt.timezone(offset)
        )
    except ValueError:
        raise BadCommand("no such date-time") from None


def format_date_time(value: dt.datetime) -> str:
    """INTERNALDATE form, in UTC: ``" 2-Mar-2026 09:00:00 +0000"``."""
    value = value.astimezone(dt.UTC)
    return f"{value.day:2d}-{MONTHS[value.month - 1]}-{value.year:04d} {value:%H:%M:%S} +0000"


_KEYWORD = re.compile(r"^[\x21-\x7e]+$")
SYSTEM = {
    "\\seen": "\\Seen",
    "\\answered": "\\Answered",
    "\\flagged": "\\Flagged",
    "\\deleted": "\\Deleted",
    "\\draft": "\\Draft",
}


def parse_flag(token: Token, *, allow_recent: bool = False) -> str:
    """One flag: a system flag (canonical case) or a keyword atom."""
    if not isinstance(token, Atom):
        raise BadCommand("flags are atoms")
    lowered = token.lower()
    if lowered in SYSTEM:
        return SYSTEM[lowered]
    if lowered == "\\recent" and allow_recent:
        return "\\Recent"
    if token.startswith("\\") or not _KEYWORD.match(token) or any(c in token for c in '(){%*"]'):
        raise BadCommand(f"{token} is not a flag that can be set")
    return str(token)


def parse_flag_list(token: Token) -> list[str]:
    """``(\\Seen $Label1)`` or a single flag."""
    items = token if isinstance(token, list) else [token]
    return [parse_flag(item) for item in items]
