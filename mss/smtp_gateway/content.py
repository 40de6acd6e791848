"""The content stage: parse once, read the facts policy needs, verify the signature, stamp headers.

The exact raw bytes are kept: signatures are verified over them and IMAP
serves them. The hub only ever *prepends* header lines (Received,
Authentication-Results, a missing Message-ID) and removes
Authentication-Results lines a client forged in our name, both in the
top-level header block that no S/MIME signature covers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.errors
import email.utils
import itertools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from mss.email_policy import PARSER, header_fields, plain_content_type
from mss.errors import HubError
from mss.policy import MessageFacts

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
_HEADER_END = re.compile(rb"\r\n\r\n")


class UnreadableMessage(HubError):
    """The top-level header block cannot be read: DATA is answered 554 5.6.0."""


@dataclass
class ParsedMessage:
    """One message, read once: the raw bytes, its top-level header block and the facts every stage
    reads."""

    raw: bytes
    head: bytes  # the top-level header block as received, before stamping
    facts: MessageFacts
    message_id: str
    content_type: tuple[str, dict[str, str]] | None  # type and parameters, when plainly written
    _message: EmailMessage | None = field(default=None, repr=False, compare=False)

    @property
    def from_address(self) -> str:
        return self.facts.from_addresses[0] if self.facts.from_addresses else ""

    @property
    def message(self) -> EmailMessage:
        """The header block parsed by the email package (policy.default; no body, no parts), on
        first use."""
        if self._message is None:
            self._message = _header_message(self.head)
        return self._message


@dataclass(frozen=True)
class SignatureOutcome:
    """What S/MIME verification found, in the shape the store and the policy want."""

    status: str
    reason: str = ""
    signer_address: str | None = None
    signer_subject: str | None = None
    signer_id_nat: str | None = None

    def as_store_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signer_address": self.signer_address,
            "signer_subject": self.signer_subject,
            "signer_id_nat": self.signer_id_nat,
        }


def has_bare_line_ending(raw: bytes) -> bool:
    """A CR not followed by LF, or an LF not preceded by CR (the SMTP smuggling building blocks).

    Every CR and every LF belongs to a CRLF pair exactly when the three counts are equal
    (three passes in C instead of a regular expression over the whole message).
    """
    pairs = raw.count(b"\r\n")
    return raw.count(b"\r") != pairs or raw.count(b"\n") != pairs


def parse_message(raw: bytes) -> ParsedMessage:
    """Read the top-level header block once and extract the policy facts.

    Only the header block is read: every decision of the message path reads
    top-level headers, and the body is read where it matters from the raw bytes
    (S/MIME verification, the IMAP structure, DMP filing, the agenda job). A
    plainly written block (``mss.email_policy.header_fields``) is read directly;
    otherwise the email package parses it (``policy.default`` with parsed header
    values cached). Stamping only prepends headers, so the message is never
    read again. Raises UnreadableMessage when the email package cannot read the block.
    """
    from mss.crypto.smime import split_head

    head = split_head(raw)[0]
    fields = header_fields(head)
    content_type = plain_content_type(fields) if fields is not None else None
    read = _plain_facts(fields) if fields is not None and content_type is not None else None
    message = None
    if read is None:  # parsed here, where a parse failure means "unreadable"
        try:
            message = _header_message(head)
            read = _parsed_facts(message)
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
    return ParsedMessage(
        raw, head, dataclasses.replace(facts, size=len(raw)), message_id, content_type, message
    )


def _header_message(head: bytes) -> EmailMessage:
    message = PARSER.parsebytes(head, headersonly=True)
    assert isinstance(message, EmailMessage)
    return message


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


INLINE_VERIFY_SIZE = 256 * 1024  # bytes: a smaller message is verified on the loop


async def verify_signature(parsed: ParsedMessage, trust: Any) -> SignatureOutcome:
    """S/MIME verification (chain, EKU, address = From, CRL).

    What kind of S/MIME the message is comes from ``mss.crypto.smime.read_form``, the one
    reading every path uses. A message up to ``INLINE_VERIFY_SIZE`` is verified on the
    event loop: that takes about 0.35 ms, less than handing it to a thread and waiting
    for the GIL to come back. A larger one (its digest grows with its size) is verified
    in a thread.
    """
    from mss.crypto import smime

    content_type = top_content_type(parsed)
    if smime.framing(*content_type) is None:
        return SignatureOutcome("none")
    if len(parsed.raw) <= INLINE_VERIFY_SIZE:
        result = smime.verify(
            parsed.raw, trust, from_address=parsed.from_address, content_type=content_type
        )
    else:
        result = await asyncio.to_thread(
            smime.verify,
            parsed.raw,
            trust,
            from_address=parsed.from_address,
            content_type=content_type,
        )
    return SignatureOutcome(
        str(result.status),
        result.reason or "",
        result.signer_address,
        result.signer_subject,
        result.signer_id_nat,
    )


def top_content_type(parsed: ParsedMessage) -> tuple[str, Mapping[str, object]]:
    """The top-level Content-Type and its parameters: as read when plainly written, else by
    S/MIME's reader."""
    if parsed.content_type is not None:
        return parsed.content_type
    from mss.crypto import smime

    return smime.content_type_of(parsed.head)


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def authentication_results(
    hostname: str,
    *,
    signature: SignatureOutcome,
    from_address: str,
    auth_user: str | None = None,
    dkim: list[str] | None = None,
) -> str:
    """The value of our Authentication-Results header (RFC 8601), one method per clause."""
    clauses = []
    if auth_user:
        clauses.append(f"auth=pass smtp.auth={auth_user}")
    clauses.extend(dkim or [])
    from mss.crypto.smime import auth_result_word

    smime = f"smime={auth_result_word(signature.status)}"
    if signature.status not in ("valid", "none"):
        smime += f" ({signature.status})"
    elif signature.signer_subject:
        id_nat = f"; idNat={signature.signer_id_nat}" if signature.signer_id_nat else ""
        smime += f" ({_comment(signature.signer_subject)}{id_nat})"
    smime += f" header.from={from_address or 'unknown'}"
    clauses.append(smime)
    return f"{hostname}; " + ";\r\n\t".join(clauses)


def _comment(text: str) -> str:
    return text.replace("(", "[").replace(")", "]").replace("\\", "/")


def restamped(parsed: ParsedMessage, raw: bytes, message_id: str | None = None) -> ParsedMessage:
    """The same parsed message with its stamped raw bytes (only prepended headers changed)."""
    facts = dataclasses.replace(parsed.facts, size=len(raw))
    return dataclasses.replace(
        parsed, raw=raw, facts=facts, message_id=message_id or parsed.message_id
    )


def stamp(raw: bytes, hostname: str, new_headers: list[tuple[str, str]]) -> bytes:
    """Prepend our header lines and drop Authentication-Results forged with our authserv-id."""
    end = _HEADER_END.search(raw)
    head_len = end.start() + 2 if end else len(raw)
    head, body = raw[:head_len], raw[head_len:]
    kept = [field for field in _header_fields(head) if not _claims_us(field, hostname)]
    ours = b"".join(f"{name}: {value}\r\n".encode() for name, value in new_headers)
    return ours + b"".join(kept) + body


def _header_fields(head: bytes) -> list[bytes]:
    """Split a header block into whole fields (a field and its folded continuation lines)."""
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _claims_us(field: bytes, hostname: str) -> bool:
    name, _, value = field.partition(b":")
    if name.strip().lower() != b"authentication-results":
        return False
    authserv = value.decode("utf-8", "replace").strip().split(";", 1)[0].strip().split()
    return bool(authserv) and authserv[0].lower() == hostname.lower()
