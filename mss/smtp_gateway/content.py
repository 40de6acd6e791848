"""The content stage: verify the signature and stamp the headers of the one message object.

The message is read once, by ``mss.message.parse_message`` (the session stage calls it on
the DATA bytes); everything here reads that ``Message``.

The exact raw bytes are kept: signatures are verified over them and IMAP
serves them. The hub only ever *prepends* header lines (Received,
Authentication-Results, a missing Message-ID) and removes
Authentication-Results lines a client forged in our name, both in the
top-level header block that no S/MIME signature covers.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

from mss.message import Message

_HEADER_END = re.compile(rb"\r\n\r\n")


@dataclass(frozen=True)
class SignatureOutcome:
    """What S/MIME verification found, in the shape the store and the policy want."""

    status: str
    reason: str = ""
    signer_address: str | None = None
    signer_subject: str | None = None
    signer_id_nat: str | None = None
    # the CMS form the message arrived in when the hub decrypted it ("enveloped-data",
    # "authEnveloped-data"); "" when it arrived unencrypted
    decrypted_from: str = ""

    def as_store_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signer_address": self.signer_address,
            "signer_subject": self.signer_subject,
            "signer_id_nat": self.signer_id_nat,
            "arrived_encrypted": bool(self.decrypted_from),
        }


def has_bare_line_ending(raw: bytes) -> bool:
    """A CR not followed by LF, or an LF not preceded by CR (the SMTP smuggling building blocks).

    Every CR and every LF belongs to a CRLF pair exactly when the three counts are equal
    (three passes in C instead of a regular expression over the whole message).
    """
    pairs = raw.count(b"\r\n")
    return raw.count(b"\r") != pairs or raw.count(b"\n") != pairs


INLINE_VERIFY_SIZE = 256 * 1024  # bytes: a smaller message is verified on the loop


async def verify_signature(
    parsed: Message, trust: Any, *, decrypted_from: str = ""
) -> SignatureOutcome:
    """S/MIME verification (chain, EKU, address = From, CRL).

    What kind of S/MIME the message is comes from ``mss.crypto.smime.read_form``, the one
    reading every path uses. A message up to ``INLINE_VERIFY_SIZE`` is verified on the
    event loop: that takes about 0.35 ms, less than handing it to a thread and waiting
    for the GIL to come back. A larger one (its digest grows with its size) is verified
    in a thread.
    """
    from mss.crypto import smime

    content_type = parsed.content_type
    if smime.framing(*content_type) is None:
        return SignatureOutcome("none", decrypted_from=decrypted_from)
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
        decrypted_from,
    )


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
    if signature.decrypted_from:  # RFC 8601 §2.3: a comment; no registered property says it
        smime += f" (decrypted: {signature.decrypted_from})"
    smime += f" header.from={from_address or 'unknown'}"
    clauses.append(smime)
    return f"{hostname}; " + ";\r\n\t".join(clauses)


def _comment(text: str) -> str:
    return text.replace("(", "[").replace(")", "]").replace("\\", "/")


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
