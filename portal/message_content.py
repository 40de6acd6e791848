"""What a stored message shows: its text, its sanitised HTML, its attachments.

The store keeps each message's MIME tree as byte offsets (see
``mss.mailbox.structure``); this module walks that tree, reads only the
header block of each part it needs and decodes only the part it shows or
serves, so a message is never parsed again as a whole.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.policy
import mimetypes
import quopri
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import quote

import nh3

from mss.crypto.cms import CmsFailure, check_signed_data
from mss.crypto.smime import read_form
from mss.email_policy import part_filename
from mss.mailbox.structure import describe

_HEADERS = BytesHeaderParser(policy=email.policy.default)
_SIGNATURE_TYPES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
_OPAQUE_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_TOKEN_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_REMOTE = re.compile(
    r"<\s*(img|image|link|iframe|frame|object|embed|video|audio|source|svg)\b|url\s*\(|"
    r"\bbackground\s*=",
    re.IGNORECASE,
)

# Sanitised HTML keeps structure and links, nothing that loads, runs or styles.
HTML_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "ins",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
HTML_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
LINK_SCHEMES = {"http", "https", "mailto", "tel"}


@dataclass(frozen=True)
class Attachment:
    """A part offered as a download, named by its IMAP part number (``2``, ``1.3``)."""

    part: str
    filename: str
    content_type: str
    size: int

    @property
    def size_text(self) -> str:
        if self.size >= 1024 * 1024:
            return f"{self.size / (1024 * 1024):.1f} Mo".replace(".", ",")
        return f"{max(1, round(self.size / 1024))} Ko"


@dataclass
class MessageContent:
    """The text to show (plain text preferred, else sanitised HTML) and the attachments."""

    texts: list[str] = field(default_factory=list)
    html: str | None = None
    remote_blocked: bool = False
    attachments: list[Attachment] = field(default_factory=list)


def sanitise_html(html: str) -> str:
    """HTML without scripts, styles, images, frames, forms or event handlers (nh3, an
    allow-list)."""
    return nh3.clean(
        html,
        tags=HTML_TAGS,
        attributes=HTML_ATTRIBUTES,
        url_schemes=LINK_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def decode_part(raw: bytes, node: dict[str, Any]) -> bytes:
    """The decoded bytes of one leaf part (base64, quoted-printable, or as is)."""
    data = raw[node["b"] : node["e"]]
    encoding = node.get("enc", "7bit")
    if encoding == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]  # a lone trailing character cannot be decoded
        try:
            return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            return b""
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


def decode_text(data: bytes, charset: str | None) -> str:
    """Text in its declared charset; UTF-8 when the declaration is wrong; never an error."""
    for candidate in (charset or "utf-8", "utf-8"):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _part_headers(raw: bytes, node: dict[str, Any]) -> Any:
    return _HEADERS.parsebytes(raw[node["h"] : node["b"]])


def _leaf_size(raw: bytes, node: dict[str, Any]) -> int:
    size = node["e"] - node["b"]
    return size * 3 // 4 if node.get("enc") == "base64" else size


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.content = MessageContent()

    def walk(self, node: dict[str, Any], path: str) -> None:
        kind = node.get("type", "text/plain")
        children = node.get("parts")
        if children is None:
            self.leaf(node, path or "1")
            return
        prefix = f"{path}." if path else ""
        if kind == "multipart/signed":
            self.walk(children[0], prefix + "1")  # the signed content; the signature is shown apart
            return
        if kind == "multipart/alternative":
            chosen = _preferred(children)
            self.walk(children[chosen], f"{prefix}{chosen + 1}")
            return
        for index, child in enumerate(children):
            self.walk(child, f"{prefix}{index + 1}")

    def leaf(self, node: dict[str, Any], path: str) -> None:
        kind = node.get("type", "text/plain")
        if kind in _SIGNATURE_TYPES:
            return
        headers = _part_headers(self.raw, node)
        filename = part_filename(headers)
        inline = headers.get_content_disposition() != "attachment" and not filename
        if inline and kind == "text/plain":
            text = decode_text(decode_part(self.raw, node), node.get("charset"))
            self.content.texts.append(text.replace("\r\n", "\n").rstrip())
            return
        if inline and kind == "text/html" and self.content.html is None and not self.content.texts:
            html = decode_text(decode_part(self.raw, node), node.get("charset"))
            self.content.remote_blocked = bool(_REMOTE.search(html))
            self.content.html = sanitise_html(html)
            return
        self.content.attachments.append(
            Attachment(
                path, safe_filename(filename, kind), served_type(kind), _leaf_size(self.raw, node)
            )
        )


def _preferred(children: list[dict[str, Any]]) -> int:
    """The alternative to show: text/plain if there is one, else the last (richest) one."""
    for index, child in enumerate(children):
        if child.get("type") == "text/plain":
            return index
    return len(children) - 1


def shown_entity(raw: bytes, structure: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """What to show: the signed entity inside an opaque S/MIME message, else the message itself.

    An opaque signature (application/pkcs7-mime, signed-data) wraps the whole content; the
    gateway verified it at delivery, so here it is only unwrapped (and its tree computed once).
    """
    top = structure.get("parts") or {}
    if top.get("type") not in _OPAQUE_TYPES:
        return raw, structure
    try:
        form = read_form(raw)  # what the gateway read: the CMS OID decides, not smime-type
        inner = check_signed_data(form.der, None).content if form.kind == "opaque_signed" else b""
    except CmsFailure:
        return raw, structure
    if not inner:
        return raw, structure
    return inner, describe(inner).structure_column()


def read_content(raw: bytes, structure: dict[str, Any]) -> MessageContent:
    """Text, HTML and attachments of a stored message, from its stored part offsets."""
    reader = _Reader(raw)
    top = structure.get("parts")
    if top:
        reader.walk(top, "")
    if reader.content.html is not None and reader.content.texts:
        reader.content.html = None  # plain text is preferred when both were sent apart
    return reader.content


@dataclass(frozen=True)
class ShownMessage:
    """What the message page shows of a stored message: ``shown_entity`` and ``read_content``.

    Shared by every view of the message in this process: callers never change it.
    """

    raw: bytes
    structure: dict[str, Any]
    content: MessageContent


SHOWN_CACHE_BYTES = 32 * 1024 * 1024  # the shown entities kept, at most (least recently used go)
_shown: OrderedDict[tuple[int, dt.datetime, int], ShownMessage] = OrderedDict()
_shown_bytes = 0


def shown_message(
    message_id: int, internal_date: dt.datetime, raw: bytes, structure: dict[str, Any]
) -> ShownMessage:
    """The shown entity and its content, computed on the message's first view and kept.

    A stored message never changes; its id with its date and size is the key, so a row id
    reused after an expunge is not mistaken for the message it replaces.
    """
    global _shown_bytes
    key = (message_id, internal_date, len(raw))
    found = _shown.get(key)
    if found is not None:
        _shown.move_to_end(key)
        return found
    shown_raw, shown_structure = shown_entity(raw, structure)
    found = ShownMessage(shown_raw, shown_structure, read_content(shown_raw, shown_structure))
    if len(shown_raw) <= SHOWN_CACHE_BYTES // 8:
        _shown[key] = found
        _shown_bytes += len(shown_raw)
        while _shown_bytes > SHOWN_CACHE_BYTES:
            _key, gone = _shown.popitem(last=False)
            _shown_bytes -= len(gone.raw)
    return found


def find_part(structure: dict[str, Any], part: str) -> dict[str, Any] | None:
    """The node of an IMAP part number (``1``, ``2.1``) in the stored offset tree."""
    node: dict[str, Any] | None = structure.get("parts")
    if node is None or not re.fullmatch(r"[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,20}", part):
        return None
    if node.get("parts") is None:
        return node if part == "1" else None
    for number in part.split("."):
        children = node.get("parts") if node is not None else None
        if not children or int(number) > len(children):
            return None
        node = children[int(number) - 1]
    return node


def served_type(kind: str) -> str:
    """The declared type when it is a well-formed type/subtype, else application/octet-stream."""
    kind = kind.strip().lower()
    return kind if _TOKEN_TYPE.fullmatch(kind) else "application/octet-stream"


def safe_filename(name: str | None, kind: str = "application/octet-stream") -> str:
    """A file name without path, control characters or leading dots; a default one when empty."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = (
        "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().lstrip(".").strip()
    )
    if not text:
        text = "piece-jointe" + (mimetypes.guess_extension(served_type(kind)) or ".bin")
    return text[:150]


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact UTF-8 ``filename*`` (RFC 6266,
    8187)."""
    folded = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", folded).strip() or "piece-jointe"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
