"""SEARCH: parse every RFC 3501 search key (plus MODSEQ) and evaluate it.

Keys on flags, UIDs, sequence numbers and mod-sequences run on the
session's view. Header keys run on the decoded header lines stored at
delivery, with a LIKE pre-filter in SQL; BODY and TEXT decode the text
parts of the raw message (the only keys that read whole messages).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mss.mailbox.headers import parse_addresses
from mss.mailbox.imap.parser import MAX_NESTING, SequenceSet, parse_date, parse_flag
from mss.mailbox.imap.wire import Atom, BadCommand, ImapError, Token, as_number, as_text
from mss.mailbox.models import StoredMessage
from mss.mailbox.structure import decoded_body

Node = tuple[Any, ...]

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_ADDRESS_KEYS = {"BCC": "Bcc", "CC": "Cc", "FROM": "From", "TO": "To"}
_DATE_KEYS = {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"}


class _Parser:
    def __init__(self, tokens: list[Token], charset: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.charset = charset

    def take(self, what: str) -> Token:
        if self.pos >= len(self.tokens):
            raise BadCommand(f"SEARCH: missing {what}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def string(self, what: str) -> str:
        token = self.take(what)
        if isinstance(token, list):
            raise BadCommand(f"SEARCH: expected {what}")
        if isinstance(token, bytes) and not isinstance(token, Atom):
            try:
                return token.decode(self.charset)
            except UnicodeDecodeError:
                raise BadCommand(f"SEARCH: {what} is not valid {self.charset}") from None
        return as_text(token, what)

    def keys(self, depth: int = 0) -> list[Node]:
        nodes = []
        while self.pos < len(self.tokens):
            nodes.append(self.key(depth))
        return nodes

    def next_is(self, name: str) -> bool:
        token = self.tokens[self.pos] if self.pos < len(self.tokens) else None
        return isinstance(token, Atom) and token.upper() == name

    def key(self, depth: int) -> Node:
        # Each parenthesis, NOT and OR operand is a level; the evaluator recurses as deep.
        if depth > MAX_NESTING:
            raise BadCommand(f"search criteria nested too deeply (limit {MAX_NESTING})")
        token = self.take("a search key")
        if isinstance(token, list):
            inner = _Parser(token, self.charset)
            nodes = inner.keys(depth + 1)
            if not nodes:
                raise BadCommand("SEARCH: empty parenthesised key")
            return ("and", nodes)
        if not isinstance(token, Atom):
            raise BadCommand("SEARCH: expected a search key")
        name = token.upper()
        if name[:1].isdigit() or name[:1] == "*":
            return ("seq", SequenceSet.parse(token))
        if name == "ALL":
            return ("all",)
        if name in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[name]
            return ("flag", flag, present)
        if name in ("KEYWORD", "UNKEYWORD"):
            return ("flag", parse_flag(self.take("a keyword")), name == "KEYWORD")
        if name == "RECENT":
            return ("flag", "\\Recent", True)
        if name == "NEW":  # recent and not seen (RFC 3501 6.4.4)
            return ("and", [("flag", "\\Recent", True), ("flag", "\\Seen", False)])
        if name == "OLD":
            return ("flag", "\\Recent", False)
        if name in _ADDRESS_KEYS:
            return ("address", _ADDRESS_KEYS[name], self.string(f"a {name} string"))
        if name == "SUBJECT":
            return ("header", "Subject", self.string("a SUBJECT string"))
        if name == "HEADER":
            field_name = self.string("a header field name")
            return ("header", field_name, self.string("a header value"))
        if name in ("BODY", "TEXT"):
            return (name.lower(), self.string(f"a {name} string"))
        if name in _DATE_KEYS:
            return (name.lower(), parse_date(self.take("a date")))
        if name in ("LARGER", "SMALLER"):
            return (name.lower(), as_number(self.take("a size"), name))
        if name == "UID":
            return ("uid", SequenceSet.parse(self.take("a UID set")))
        if name == "NOT":
            return ("not", self.key(depth + 1))
        if name == "OR":
            # OR a OR b OR c d is one flat list of alternatives, however long the chain (clients
            # write a list of addresses this way); only the first operands nest.
            alternatives = [self.key(depth + 1)]
            while self.next_is("OR"):
                self.pos += 1
                alternatives.append(self.key(depth + 1))
            alternatives.append(self.key(depth + 1))
            return ("or", alternatives)
        if name == "MODSEQ":
            token = self.take("a mod-sequence")
            if isinstance(token, bytes) and not isinstance(token, Atom):  # entry name and type
                self.take("an entry type")
                token = self.take("a mod-sequence")
            return ("modseq", as_number(token, "MODSEQ"))
        raise BadCommand(f"SEARCH: unknown key {token}")


@dataclass
class SearchQuery:
    """A parsed search: the conjunction of its keys."""

    nodes: list[Node]

    def _walk(self) -> list[Node]:
        out: list[Node] = []
        stack = list(self.nodes)
        while stack:
            node = stack.pop()
            out.append(node)
            if node[0] == "and":
                stack.extend(node[1])
            elif node[0] == "not":
                stack.append(node[1])
            elif node[0] == "or":
                stack.extend(node[1])
        return out

    @property
    def uses_modseq(self) -> bool:
        return any(n[0] == "modseq" for n in self._walk())

    def columns(self) -> list[Any]:
        kinds = {n[0] for n in self._walk()}
        cols: list[Any] = []
        if kinds & {"before", "on", "since"}:
            cols.append(StoredMessage.internal_date)
        if kinds & {"sentbefore", "senton", "sentsince"}:
            cols.append(StoredMessage.sent_date)
        if kinds & {"larger", "smaller"}:
            cols.append(StoredMessage.size)
        if kinds & {"header", "address", "text"}:
            cols.append(StoredMessage.headers_text)
        if kinds & {"body", "text"}:
            cols.extend([StoredMessage.raw, StoredMessage.bodystructure])
        return cols

    def header_prefilters(self) -> list[str]:
        """Substrings every match must contain in its header lines (top-level AND header keys).

        Address keys are left out: they may match an address only its normalised form spells.
        """
        return [n[2] for n in self.nodes if n[0] == "header" and n[2]]


def parse_search(args: list[Token]) -> SearchQuery:
    charset = "utf-8"
    if len(args) >= 2 and isinstance(args[0], Atom) and args[0].upper() == "CHARSET":
        name = as_text(args[1], "a charset").lower()
        if name not in ("utf-8", "us-ascii", "utf8"):
            raise ImapError(f"charset {name} is not supported", "BADCHARSET (UTF-8 US-ASCII)")
        args = args[2:]
    if args and isinstance(args[0], Atom) and args[0].upper() == "RETURN":
        raise BadCommand("SEARCH RETURN (ESEARCH) is not supported")
    nodes = _Parser(args, charset).keys()
    if not nodes:
        raise BadCommand("SEARCH needs at least one key")
    return SearchQuery(nodes)


@dataclass
class Candidate:
    """One message as the evaluator sees it."""

    seq: int
    uid: int
    flags: frozenset[str]
    modseq: int
    row: Any = None


def _field_values(headers_text: str, field_name: str) -> list[str]:
    prefix = field_name.lower() + ":"
    return [
        line[len(prefix) :]
        for line in headers_text.split("\n")
        if line[: len(prefix)].lower() == prefix
    ]


def _header_matches(headers_text: str, field_name: str, value: str) -> bool:
    needle = value.casefold()
    return any(needle in text.casefold() for text in _field_values(headers_text, field_name))


def _address_forms(value: str) -> list[str]:
    """The addresses of a field as ``Name <mailbox@host>``: comments and odd spacing gone."""
    forms = []
    for name, _route, mailbox, host in parse_addresses(value) or []:
        address = f"{mailbox}@{host}" if mailbox and host else (mailbox or "")
        forms.append(f"{name} <{address}>" if name else address)
    return forms


def _address_matches(headers_text: str, field_name: str, value: str) -> bool:
    """FROM, TO, CC, BCC: the string anywhere in the field (RFC 3501 §6.4.4), names and addresses.

    The field as written (encoded words decoded) is tried, then each address as
    ``Name <mailbox@host>``, so that ``<user (comment)@ domain.org>`` matches
    ``user@domain.org`` as it does on Dovecot.
    """
    needle = value.casefold()
    for text in _field_values(headers_text, field_name):
        if needle in text.casefold() or any(
            needle in form.casefold() for form in _address_forms(text)
        ):
            return True
    return False


def _decode_part(raw: bytes, node: dict[str, Any]) -> str:
    try:
        data = decoded_body(raw, node)
    except ValueError:
        data = raw[node["b"] : node["e"]]
    # The declared charset first; undeclared or wrong ones are common (8-bit text sent as
    # "us-ascii").
    for charset in (node.get("charset") or "utf-8", "utf-8"):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def body_text(raw: bytes, node: dict[str, Any]) -> str:
    """The decoded text of every text part (and of attached messages' text parts)."""
    if "parts" in node:
        return "\n".join(body_text(raw, child) for child in node["parts"])
    if "msg" in node:
        inner = node["msg"]
        return raw[inner["h"] : inner["b"]].decode("utf-8", "replace") + body_text(raw, inner)
    if node.get("type", "").startswith("text/"):
        return _decode_part(raw, node)
    return ""


def _day(value: dt.datetime) -> dt.date:
    return value.astimezone(dt.UTC).date()


def matches(node: Node, c: Candidate, count: int, top_uid: int) -> bool:
    kind = node[0]
    if kind == "all":
        return True
    if kind == "none":
        return False
    if kind == "and":
        return all(matches(n, c, count, top_uid) for n in node[1])
    if kind == "not":
        return not matches(node[1], c, count, top_uid)
    if kind == "or":
        return any(matches(n, c, count, top_uid) for n in node[1])
    if kind == "flag":
        if node[1].startswith("\\"):  # system flags are stored in their canonical case
            return (node[1] in c.flags) == node[2]
        return (node[1].lower() in {f.lower() for f in c.flags}) == node[2]
    if kind == "seq":
        return node[1].contains_uid(c.seq, count)
    if kind == "uid":
        return node[1].contains_uid(c.uid, top_uid)
    if kind == "modseq":
        return c.modseq >= node[1]
    row = c.row
    if kind == "header":
        return _header_matches(row.headers_text, node[1], node[2])
    if kind == "address":
        return _address_matches(row.headers_text, node[1], node[2])
    if kind == "before":
        return _day(row.internal_date) < node[1]
    if kind == "on":
        return _day(row.internal_date) == node[1]
    if kind == "since":
        return _day(row.internal_date) >= node[1]
    if kind in ("sentbefore", "senton", "sentsince"):
        sent = row.sent_date
        if sent is None:
            return False
        return {
            "sentbefore": sent < node[1],
            "senton": sent == node[1],
            "sentsince": sent >= node[1],
        }[kind]
    if kind == "larger":
        return row.size > node[1]
    if kind == "smaller":
        return row.size < node[1]
    if kind == "body":
        return node[1].casefold() in body_text(row.raw, row.bodystructure["parts"]).casefold()
    if kind == "text":
        needle = node[1].casefold()
        return (
            needle in row.headers_text.casefold()
            or needle in body_text(row.raw, row.bodystructure["parts"]).casefold()
        )
    raise AssertionError(kind)
