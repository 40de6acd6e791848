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
import email.policy
import email.utils
import re
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from mss.email_policy import PARSER
from mss.policy import MessageFacts

_MSGID = re.compile(r"<[^<>\s]+>")
_HEADER_END = re.compile(rb"\r\n\r\n")


@dataclass
class ParsedMessage:
    """One message, parsed once: the raw bytes, its top-level headers and the facts every stage reads.

    ``message`` holds the top-level header block only (no body, no parts).
    """

    raw: bytes
    message: EmailMessage
    facts: MessageFacts
    message_id: str

    @property
    def from_address(self) -> str:
        return self.facts.from_addresses[0] if self.facts.from_addresses else ""


@dataclass(frozen=True)
class SignatureOutcome:
    """What S/MIME verification found, in the shape the store and the policy want."""

    status: str
    reason: str = ""
    signer_address: str | None = None
    signer_subject: str | None = None
    signer_id_nat: str | None = None

    def as_store_dict(self) -> dict[str, Any]:
        return {"status": self.status, "signer_address": self.signer_address,
                "signer_subject": self.signer_subject, "signer_id_nat": self.signer_id_nat}


def has_bare_line_ending(raw: bytes) -> bool:
    """A CR not followed by LF, or an LF not preceded by CR (the SMTP smuggling building blocks).

    Every CR and every LF belongs to a CRLF pair exactly when the three counts are equal
    (three passes in C instead of a regular expression over the whole message).
    """
    pairs = raw.count(b"\r\n")
    return raw.count(b"\r") != pairs or raw.count(b"\n") != pairs


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse the top-level header block once (policy.default) and extract the policy facts.

    Only the header block is parsed: every decision of the message path reads
    top-level headers, and the body is read where it matters from the raw bytes
    (S/MIME verification, the IMAP structure, DMP filing, the agenda job). The
    policy is ``policy.default`` with parsed header values cached
    (``mss.email_policy``). Stamping only prepends headers, so the message is
    never parsed again.
    """
    from mss.crypto.smime import split_head

    message = PARSER.parsebytes(split_head(raw)[0], headersonly=True)
    assert isinstance(message, EmailMessage)
    from_addresses = tuple(addr for _, addr in email.utils.getaddresses(_all(message, "From")) if addr)
    facts = MessageFacts(
        from_addresses=from_addresses,
        subject=_text(message.get("Subject")),
        in_reply_to=tuple(_MSGID.findall(" ".join(_all(message, "In-Reply-To")))),
        references=tuple(_MSGID.findall(" ".join(_all(message, "References")))),
        mss_mes=_text(message.get("X-MSS-MES")),
        size=len(raw),
    )
    found = _MSGID.findall(_text(message.get("Message-ID")))
    return ParsedMessage(raw, message, facts, found[0] if found else "")


def _all(message: EmailMessage, name: str) -> list[str]:
    return [_text(v) for v in message.get_all(name, [])]


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


async def verify_signature(parsed: ParsedMessage, trust: Any) -> SignatureOutcome:
    """S/MIME verification (chain, EKU, address = From, CRL) off the event loop."""
    from mss.crypto import smime

    content_type = parsed.message.get_content_type()
    signed = content_type == "multipart/signed" or (
        content_type in ("application/pkcs7-mime", "application/x-pkcs7-mime")
        and "signed-data" in _text(parsed.message.get_param("smime-type", "")).lower())
    if not signed:
        return SignatureOutcome("none")
    result = await asyncio.to_thread(smime.verify, parsed.raw, trust, from_address=parsed.from_address)
    return SignatureOutcome(str(result.status), result.reason or "", result.signer_address,
                            result.signer_subject, result.signer_id_nat)


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def authentication_results(hostname: str, *, signature: SignatureOutcome, from_address: str,
                           auth_user: str | None = None, dkim: list[str] | None = None) -> str:
    """The value of our Authentication-Results header (RFC 8601), one method per clause."""
    clauses = []
    if auth_user:
        clauses.append(f"auth=pass smtp.auth={auth_user}")
    clauses.extend(dkim or [])
    verdict = {"valid": "pass", "none": "none"}.get(signature.status, "fail")
    smime = f"smime={verdict}"
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
    return ParsedMessage(raw, parsed.message, facts, message_id or parsed.message_id)


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
