"""MDNs (RFC 8098) for XDM filing, in the MSSanté subject format.

Success: ``Disposition: automatic-action/MDN-sent-automatically; processed``
and the original subject. Failure: ``processed/error`` plus an ``Error:``
field carrying the integration code the way MSSanté writes it
(``902^Identifiant patient inconnu^applicationErrorCondition|E^Error^errorSeverity``),
and the subject ``[KO Intégration système !][902] <original subject>``.

The IG example writes the code inside the Disposition field
(``processed/Error: 902^...``), which RFC 8098 does not allow (a
disposition-modifier is a single token); we keep the Disposition valid and
put the code in the Error field, which RFC 8098 §3.2.7 defines for it.
Fields of the machine-readable part are US-ASCII (RFC 8098), so the French
label is written there without accents; the human part keeps them. The
third part is the original message (message/rfc822), as the IG requires.
"""

from __future__ import annotations

import email.header
import email.policy
import email.utils
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser

from dmp_bridge.errors import LABELS_FR
from mss.db import utcnow

KO_PREFIX = "[KO Intégration système !]"


@dataclass(frozen=True)
class DocumentOutcome:
    """What happened to one document of the package."""

    title: str
    filed: bool
    code: int | None = None
    sentence_fr: str = ""
    sentence: str = ""


def ascii_text(text: str) -> str:
    """French text without accents (for RFC 8098 fields, which are US-ASCII)."""
    folded = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in folded if not unicodedata.combining(c)).encode("ascii", "replace").decode()


def error_field(code: int) -> str:
    """``<code>^<label>^applicationErrorCondition|E^Error^errorSeverity`` (ASCII)."""
    return f"{code}^{ascii_text(LABELS_FR[code])}^applicationErrorCondition|E^Error^errorSeverity"


def mdn_subject(original_subject: str, code: int | None) -> str:
    subject = " ".join(original_subject.split())
    return f"{KO_PREFIX}[{code}] {subject}" if code is not None else subject


def _human_text(outcomes: Sequence[DocumentOutcome], code: int | None) -> str:
    if code is None:
        lines = ["Le ou les documents ont été intégrés au dossier médical du patient.", ""]
        lines += [f"  - {o.title}" for o in outcomes if o.filed]
        lines += ["", "The document(s) were filed into the patient's medical record."]
        return "\n".join(lines) + "\n"
    lines = ["Le document n'a pas pu être intégré.",
             (f"Le système a retourné l'erreur {code}^{LABELS_FR[code]}^applicationErrorCondition|"
             f"E^Error^errorSeverity"), ""]
    for outcome in outcomes:
        state = "intégré" if outcome.filed else f"erreur {outcome.code} : {outcome.sentence_fr}"
        lines.append(f"  - {outcome.title or 'document'} : {state}")
    lines += ["", f"The document could not be filed (error {code})."]
    lines += [f"  - {o.title or 'document'}: error {o.code}: {o.sentence}"
              for o in outcomes if not o.filed]
    return "\n".join(lines) + "\n"


_UNFOLDED = email.policy.SMTP.clone(max_line_length=998)


def _notification(final_recipient: str, reporting_host: str, original: Message,
                  code: int | None) -> bytes:
    fields = Message()
    fields["Reporting-UA"] = f"{reporting_host}; MSS hub DMP bridge"
    original_recipient = str(original.get("Original-Recipient") or "").strip()
    if original_recipient:
        fields["Original-Recipient"] = original_recipient
    fields["Final-Recipient"] = f"rfc822; {final_recipient}"
    original_id = str(original.get("Message-ID") or "").strip()
    if original_id:
        fields["Original-Message-ID"] = original_id
    disposition = "automatic-action/MDN-sent-automatically; processed"
    fields["Disposition"] = disposition + ("/error" if code is not None else "")
    if code is not None:
        fields["Error"] = error_field(code)
    return (b"Content-Type: message/disposition-notification\r\n\r\n"
            + fields.as_bytes(policy=_UNFOLDED).lstrip(b"\r\n"))


def _text_part(text: str) -> bytes:
    part = EmailMessage(policy=email.policy.SMTP)
    part.set_content(text, cte="quoted-printable")
    del part["MIME-Version"]
    return part.as_bytes(policy=email.policy.SMTP)


def build_mdn(*, reporting_host: str, final_recipient: str, to: str, original_raw: bytes,
              outcomes: Sequence[DocumentOutcome], code: int | None, message_id: str) -> bytes:
    """The MDN's bytes: multipart/report with the text, the notification and the original.

    The original is carried byte for byte (never re-serialised: it may be signed).
    """
    original = BytesParser(policy=email.policy.compat32).parsebytes(original_raw, headersonly=True)
    original_id = str(original.get("Message-ID") or "").strip()
    boundary = f"=_mdn_{uuid.uuid4().hex}"
    head = EmailMessage(policy=email.policy.SMTP)
    head["From"] = final_recipient
    head["To"] = to
    head["Subject"] = mdn_subject(_decoded(original.get("Subject")), code)
    head["Date"] = email.utils.format_datetime(utcnow())
    head["Message-ID"] = message_id
    head["Auto-Submitted"] = "auto-replied"
    if original_id:
        head["In-Reply-To"] = original_id
        head["References"] = original_id
    header_block = head.as_bytes(policy=email.policy.SMTP).split(b"\r\n\r\n", 1)[0] + b"\r\n"
    header_block += (b"MIME-Version: 1.0\r\nContent-Type: multipart/report; "
                     b"report-type=disposition-notification;\r\n\tboundary=\""
                     + boundary.encode() + b"\"\r\n\r\n")
    rfc822 = original_raw if original_raw.endswith(b"\r\n") else original_raw + b"\r\n"
    parts = [_text_part(_human_text(outcomes, code)),
             _notification(final_recipient, reporting_host, original, code),
             b"Content-Type: message/rfc822\r\n\r\n" + rfc822]
    delimiter = f"--{boundary}\r\n".encode()
    body = b"".join(delimiter + part.rstrip(b"\r\n") + b"\r\n" for part in parts)
    return header_block + body + f"--{boundary}--\r\n".encode()


def _decoded(value: object) -> str:
    """A header value as text (RFC 2047 words decoded)."""
    if value is None:
        return ""
    return str(email.header.make_header(email.header.decode_header(str(value))))
