"""The message object: one reading of a message's raw bytes, shared by every stage after it.

``parse_message(raw)`` is the one entry point. It reads the top-level header block
(directly when it is plainly written, ``mss.email_policy``; by the email package
otherwise) into the facts policy decides on, and on first use walks the MIME tree of
the raw bytes once (``mss.mailbox.structure.describe``): ENVELOPE, BODYSTRUCTURE and
the offsets of every part, so a later reader slices a part's bytes instead of parsing
again. From that tree come the index of attachments (XDM packages, calendars, PDFs)
and the S/MIME form's Content-Type. The SMTP content stage builds it (then S/MIME
verification, stamping, delivery and the follow-up predicates read it); a job that
runs later from the stored bytes (DMP filing) builds it once from them.

Stamping only prepends header lines to the top-level block (``restamped``): a tree
already walked is shifted, never walked again.
"""

from __future__ import annotations

import dataclasses
import email.errors
import email.message
import email.utils
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

from mss.email_policy import PARSER, header_fields, plain_content_type
from mss.errors import HubError
from mss.mailbox.structure import MessageStructure, decoded_body, describe, leaves
from mss.policy import MessageFacts

XDM_FILE_NAME = "ihe_xdm.zip"
ZIP_TYPES = frozenset(
    {"application/zip", "application/octet-stream", "application/x-zip-compressed"}
)
OPAQUE_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
MAX_UNWRAP = 5  # opaque signatures nested deeper are not opened
_SMIME_PARAMS = ("protocol", "boundary", "smime-type")

_MSGID = re.compile(r"<[^<>\s]+>")
_FACT_FIELDS = frozenset(
    {"from", "subject", "in-reply-to", "references", "x-mss-mes", "message-id"}
)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 atext
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*(?:{_ATOM}(?:[ \t]+{_ATOM})*[ "
    rf"\t]*<({_DOT_ATOM}@{_DOT_ATOM})>|({_DOT_ATOM}@{_DOT_ATOM}))[ \t]*"
)
_PLAIN_MSGID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
_PLAIN_TEXT = re.compile(r"[\t\x20-\x7e]*")
_HEAD = re.compile(rb"\r?\n\r?\n")


class UnreadableMessage(HubError):
    """The top-level header block cannot be read: DATA is answered 554 5.6.0."""


AttachmentKind = Literal["xdm", "calendar", "pdf"]


@dataclass(frozen=True)
class Attachment:
    """One attachment of the index: its kind, file name, type and where its bytes are.

    ``node`` is a leaf of an offset tree into ``source``: the message's raw bytes, or the
    content of the opaque S/MIME signature it sits in (``signed_inside``).
    """

    kind: AttachmentKind
    name: str
    content_type: str
    node: Mapping[str, Any] = field(repr=False)
    source: bytes = field(repr=False)
    signed_inside: bool = False

    def data(self) -> bytes:
        """The attachment's bytes, transfer encoding undone; ValueError when they cannot be."""
        return decoded_body(self.source, dict(self.node))


@dataclass
class Message:
    """One message, read once: raw bytes, top-level header facts, MIME tree, attachments."""

    raw: bytes
    head: bytes  # the top-level header block as received, before stamping
    facts: MessageFacts  # what policy decides on (``mss.policy.MessageFacts``)
    message_id: str
    content_type: tuple[str, Mapping[str, object]]  # top-level type and its S/MIME parameters
    # the header fields as read: plainly written ones, else the email package's header block
    _fields: list[tuple[str, str]] | None = field(default=None, repr=False, compare=False)
    _header: EmailMessage | None = field(default=None, repr=False, compare=False)
    _structure: MessageStructure | None = field(default=None, repr=False, compare=False)
    _attachments: list[Attachment] | None = field(default=None, repr=False, compare=False)

    @property
    def from_address(self) -> str:
        return self.facts.from_addresses[0] if self.facts.from_addresses else ""

    @property
    def structure(self) -> MessageStructure:
        """The MIME tree with part offsets, ENVELOPE and BODYSTRUCTURE (walked on first use)."""
        if self._structure is None:
            self._structure = describe(self.raw)
        return self._structure

    def header_items(self) -> list[tuple[str, str]]:
        """The top-level header fields (name, folded value) as the feed parser stores them."""
        if self._header is not None:
            return list(self._header.raw_items())
        return list(self._fields or [])

    def header_values(self, name: str) -> list[str]:
        """Every value of a top-level header field, unfolded, as the header block was read."""
        if self._header is not None:
            return [str(v) for v in self._header.get_all(name, [])]
        lowered = name.lower()
        fields = self._fields or []
        return [v.replace("\r\n", "").strip() for n, v in fields if n.lower() == lowered]

    def first_header(self, name: str) -> str | None:
        """The first value of a top-level header field, stripped; None when it is absent."""
        found = self.header_values(name)
        return found[0].strip() if found else None

    @property
    def mss_codecda(self) -> str | None:
        """``X-MSS-CODECDA`` (the CDA document types, ``mss.policy.mss_headers``), as read."""
        return self.first_header("X-MSS-CODECDA")

    @property
    def mss_ins(self) -> str | None:
        """``X-MSS-INS`` (``O``: a qualified INS in the package, ``N``: none), as read."""
        return self.first_header("X-MSS-INS")

    @property
    def attachments(self) -> list[Attachment]:
        """XDM packages, calendars and PDFs, opaque S/MIME signatures opened (5 deep at most)."""
        if self._attachments is None:
            self._attachments = list(_index(self.raw, self.structure.parts, 0))
        return self._attachments

    def attached(self, kind: AttachmentKind) -> list[Attachment]:
        return [a for a in self.attachments if a.kind == kind]

    @property
    def carries_xdm(self) -> bool:
        """An IHE_XDM.zip attachment is there (``dmp_bridge`` files it)."""
        return any(a.kind == "xdm" for a in self.attachments)

    @property
    def carries_calendar(self) -> bool:
        """A text/calendar part outside any opaque signature (what the agenda job reads)."""
        return any(a.kind == "calendar" and not a.signed_inside for a in self.attachments)

    def restamped(self, raw: bytes, message_id: str | None = None) -> Message:
        """The same message with stamped raw bytes: only the top-level header block changed.

        A tree already walked is shifted by what the header block grew; its top-level
        header facts (ENVELOPE, the searchable headers) are read from the new block alone.
        """
        structure = None
        if self._structure is not None:
            structure = _shifted(self._structure, self.raw, raw)
        return dataclasses.replace(
            self,
            raw=raw,
            facts=dataclasses.replace(self.facts, size=len(raw)),
            message_id=message_id or self.message_id,
            _structure=structure,
            _attachments=None,
        )


def parse_message(raw: bytes) -> Message:
    """The one reading of a message: its top-level header block now, its MIME tree on first use.

    A plainly written block (``mss.email_policy.header_fields``) is read directly; otherwise
    the email package parses it (``policy.default`` with parsed header values cached).
    Raises UnreadableMessage when the email package cannot read the block.
    """
    match = _HEAD.search(raw)
    head = raw[: match.end()] if match else raw
    fields = header_fields(head)
    content_type: tuple[str, Mapping[str, object]] | None = (
        plain_content_type(fields) if fields is not None else None
    )
    read = _plain_facts(fields) if fields is not None and content_type is not None else None
    header: EmailMessage | None = None
    if read is None:  # parsed here, where a parse failure means "unreadable"
        try:
            parsed = PARSER.parsebytes(head, headersonly=True)
            assert isinstance(parsed, EmailMessage)
            header = parsed
            read = _parsed_facts(header)
            if content_type is None:
                content_type = _smime_content_type(header)
        except (
            IndexError,
            AttributeError,
            ValueError,
            TypeError,
            LookupError,
            RecursionError,
            email.errors.MessageError,
        ) as exc:
            # the email package's header parser lets these through on hostile headers
            # (an unfinished address, "From:Content-Type:..."): tests/fuzz/test_fuzz_smtp.py
            raise UnreadableMessage(
                f"The message header cannot be read ({type(exc).__name__})"
            ) from None
    facts, message_id = read
    assert content_type is not None  # read directly, or by the email package
    return Message(
        raw,
        head,
        dataclasses.replace(facts, size=len(raw)),
        message_id,
        content_type,
        fields,
        header,
    )


def _smime_content_type(header: EmailMessage) -> tuple[str, dict[str, object]]:
    """The top-level Content-Type and the parameters S/MIME reads, as ``compat32`` reads them
    (``mss.crypto.smime.content_type_of``), from the fields already split: not parsed again."""
    compat = email.message.Message()
    for name, value in header.raw_items():
        if name.lower() == "content-type":
            compat.set_raw(name, value)
    return compat.get_content_type(), {name: compat.get_param(name) for name in _SMIME_PARAMS}


def _index(source: bytes, tree: dict[str, Any], depth: int) -> Iterator[Attachment]:
    for leaf in leaves(tree):
        kind = leaf.get("type", "")
        if kind in OPAQUE_TYPES and depth < MAX_UNWRAP:
            inner = _unwrapped(source, leaf)
            if inner is not None:
                for found in _index(inner, describe(inner).parts, depth + 1):
                    yield dataclasses.replace(found, signed_inside=True)
                continue
        name = leaf.get("name", "")
        if name.strip().lower() == XDM_FILE_NAME and kind in ZIP_TYPES:
            yield Attachment("xdm", name, kind, leaf, source, depth > 0)
        elif kind == "text/calendar":
            yield Attachment("calendar", name, kind, leaf, source, depth > 0)
        elif kind == "application/pdf":
            yield Attachment("pdf", name, kind, leaf, source, depth > 0)


def _unwrapped(source: bytes, leaf: dict[str, Any]) -> bytes | None:
    """The entity inside an opaque signed-data part, or None (encrypted, compressed, unreadable).

    Its CMS contentType decides (``check_signed_data`` takes only signed-data), whatever
    ``smime-type`` says, as at the gateway (``mss.crypto.smime.read_form``).
    """
    from mss.crypto.cms import CmsFailure, check_signed_data

    try:
        content = check_signed_data(decoded_body(source, leaf)).content
    except (CmsFailure, ValueError):
        return None
    return content or None


def _shifted(structure: MessageStructure, old: bytes, new: bytes) -> MessageStructure:
    """``structure`` of ``old`` moved onto ``new``, which differs from it in its header block."""
    body_start = structure.parts["b"]
    if not new.endswith(old[body_start:]):
        return describe(new)  # stamping changed more than the header block: walk again
    delta = len(new) - len(old)
    parts = _moved(structure.parts, delta)
    parts["h"] = 0
    from mss.mailbox.headers import split_headers
    from mss.mailbox.structure import build_envelope, searchable_headers

    fields = split_headers(new[: parts["b"]])
    message_id = next((v for n, v in fields if n.lower() == "message-id"), "")
    return dataclasses.replace(
        structure,
        size=len(new),
        headers_text=searchable_headers(fields),
        message_id=message_id.strip()[:998],
        envelope=build_envelope(fields),
        parts=parts,
    )


def _moved(node: dict[str, Any], delta: int) -> dict[str, Any]:
    moved = {**node, "h": node["h"] + delta, "b": node["b"] + delta, "e": node["e"] + delta}
    if "parts" in node:
        moved["parts"] = [_moved(child, delta) for child in node["parts"]]
    if "msg" in node:
        moved["msg"] = _moved(node["msg"], delta)
    return moved


def _parsed_facts(message: EmailMessage) -> tuple[MessageFacts, str]:
    """The facts and the Message-ID as the email package reads them."""
    from_addresses = tuple(
        addr for _, addr in email.utils.getaddresses(_all(message, "From")) if addr
    )
    facts = MessageFacts(
        from_addresses=from_addresses,
        subject=_text(message.get("Subject")),
        in_reply_to=tuple(_MSGID.findall(" ".join(_all(message, "In-Reply-To")))),
        references=tuple(_MSGID.findall(" ".join(_all(message, "References")))),
        mss_mes=_text(message.get("X-MSS-MES")),
    )
    found = _MSGID.findall(_text(message.get("Message-ID")))
    return facts, found[0] if found else ""


def _plain_facts(fields: list[tuple[str, str]]) -> tuple[MessageFacts, str] | None:
    """The facts and the Message-ID read directly when their fields are plainly written; None
    otherwise.

    Plain means printable ASCII without encoded-words; for From, a list of ``addr-spec``
    or ``words <addr-spec>`` made of atoms and dot-atoms (no quotes, comments, groups or
    domain literals); for Message-ID, one ``<dot-atom@dot-atom>``. The email package
    reads those fields the same way (tests/test_plain_headers.py runs both).
    """
    values: dict[str, list[str]] = {name: [] for name in _FACT_FIELDS}
    for name, value in fields:
        found = values.get(name.lower())
        if found is not None:
            found.append(value.replace("\r\n", ""))  # unfolded, as policy.default reads it
    for name in ("subject", "x-mss-mes", "message-id"):
        del values[name][1:]  # get() reads the first field: later ones need not be plain
    if not all(
        _PLAIN_TEXT.fullmatch(v) and "=?" not in v for found in values.values() for v in found
    ):
        return None
    from_addresses = []
    for mailbox in itertools.chain.from_iterable(v.split(",") for v in values["from"]):
        address = _PLAIN_MAILBOX.fullmatch(mailbox)
        if address is None:
            return None
        from_addresses.append(address[1] or address[2])
    first = {name: found[0].strip() if found else "" for name, found in values.items()}
    if first["message-id"] and not _PLAIN_MSGID.fullmatch(first["message-id"]):
        return None
    facts = MessageFacts(
        from_addresses=tuple(from_addresses),
        subject=first["subject"],
        in_reply_to=tuple(_MSGID.findall(" ".join(v.strip() for v in values["in-reply-to"]))),
        references=tuple(_MSGID.findall(" ".join(v.strip() for v in values["references"]))),
        mss_mes=first["x-mss-mes"],
    )
    return facts, first["message-id"]


def _all(message: EmailMessage, name: str) -> list[str]:
    return [_text(v) for v in message.get_all(name, [])]


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()
