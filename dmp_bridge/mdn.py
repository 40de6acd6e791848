"""MDNs (RFC 8098) for XDM filing and the IG's "standard e-mail", as the ANS IG writes them.

Success: ``Disposition: automatic-action/MDN-sent-automatically; processed``
and the original subject. Failure, as the IG (struct-msg-mdn) writes it:
``processed/Error: 902^Identifiant patient inconnu^applicationErrorCondition|
E^Error^errorSeverity`` in the Disposition field, and the subject
``[KO Intégration système !][902] <original subject>``. RFC 8098's grammar
wants a single token after ``processed/``; the IG's receivers read the code
there, so the IG's form wins (docs/standards.md, RFC 8098 row). The label
and table are the IG's code table's (error-codes: ``Identifiant patient
inconnu``, applicationErrorCondition), where its example writes
``Identifiant de patient inconnu^messageErrorCondition`` (HL7 table 0357,
which has no 902). Fields of the machine-readable part are US-ASCII, so a
label is written there without accents; the human part keeps them.

Parts: the text, the notification and the original (message/rfc822, which
the IG requires), per RFC 6522 §3's "two or three". The original's body is
carried byte for byte (it may be signed); a header field in raw UTF-8 is
RFC 2047-encoded, so relaying the MDN needs no SMTPUTF8.

When the sender asked for no MDN, the IG (struct-email-standard) answers an
error with a "standard e-mail" instead: ``build_error_email``, subject
``[Erreur d’intégration !][902] <original subject>``, the text, the original
as ``message_original.eml``, then the package and its PDFs as attachments.

Both carry the package back (the MDN inside the original, the e-mail as an attachment),
so both get the ``X-MSS-CODECDA`` and ``X-MSS-INS`` headers the Référentiel socle
MSSanté #2 (§3.8.1-3.8.2) sets on a message carrying CDA documents in an IHE_XDM
archive, computed from the package as read (``mss.policy.mss_headers``).
"""

from __future__ import annotations

import email.errors
import email.header
import email.policy
import email.utils
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message

import mss.message
from dmp_bridge.errors import LABELS_EN, LABELS_FR
from mss.db import utcnow

KO_PREFIX = "[KO Intégration système !]"
ERROR_EMAIL_PREFIX = "[Erreur d’intégration !]"
DISPOSITION = "automatic-action/MDN-sent-automatically; processed"


@dataclass(frozen=True)
class DocumentOutcome:
    """What happened to one document of the package."""

    title: str
    filed: bool
    code: int | None = None
    sentence_fr: str = ""
    sentence: str = ""


@dataclass(frozen=True)
class ReturnedFile:
    """An attachment of the original given back with the standard e-mail (IHE_XDM.zip, PDFs)."""

    filename: str
    content_type: str
    data: bytes


def ascii_text(text: str) -> str:
    """French text without accents (for RFC 8098 fields, which are US-ASCII)."""
    folded = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return (
        "".join(c for c in folded if not unicodedata.combining(c))
        .encode("ascii", "replace")
        .decode()
    )


def integration_error(code: int, label: str) -> str:
    """``902^<label>^applicationErrorCondition| E^Error^errorSeverity``, spaced as the IG writes
    it."""
    return f"{code}^{label}^applicationErrorCondition| E^Error^errorSeverity"


def disposition(code: int | None) -> str:
    """The Disposition field: ``processed``, or ``processed/Error: <code>^...`` (the IG's form)."""
    if code is None:
        return DISPOSITION
    return f"{DISPOSITION}/Error: {integration_error(code, ascii_text(LABELS_FR[code]))}"


def mdn_subject(original_subject: str, code: int | None) -> str:
    subject = " ".join(original_subject.split())
    return f"{KO_PREFIX}[{code}] {subject}" if code is not None else subject


def _human_text(outcomes: Sequence[DocumentOutcome], code: int | None) -> str:
    if code is None:
        lines = ["Le ou les documents ont été intégrés au dossier médical du patient.", ""]
        lines += [f"  - {o.title}" for o in outcomes if o.filed]
        lines += ["", "The document(s) were filed into the patient's medical record."]
        return "\n".join(lines) + "\n"
    lines = [
        "Le document n’a pas pu être intégré.",
        f"Le système a retourné l'erreur {integration_error(code, LABELS_FR[code])}",
        "",
    ]
    for outcome in outcomes:
        state = "intégré" if outcome.filed else f"erreur {outcome.code} : {outcome.sentence_fr}"
        lines.append(f"  - {outcome.title or 'document'} : {state}")
    lines += ["", f"The document could not be filed (error {code})."]
    lines += [
        f"  - {o.title or 'document'}: error {o.code}: {o.sentence}"
        for o in outcomes
        if not o.filed
    ]
    return "\n".join(lines) + "\n"


_UNFOLDED = email.policy.SMTP.clone(max_line_length=998)


def _notification(
    final_recipient: str,
    original_recipient: str | None,
    reporting_host: str,
    original: Message,
    code: int | None,
) -> bytes:
    """The message/disposition-notification part, its fields in the IG example's order."""
    fields = Message()
    fields["Reporting-UA"] = f"{reporting_host}; MSS hub DMP bridge"
    original_recipient = original_recipient or str(original.get("Original-Recipient") or "").strip()
    if original_recipient:
        fields["Original-Recipient"] = ascii_text(original_recipient)
    fields["Final-Recipient"] = f"rfc822; {final_recipient}"
    original_id = str(original.get("Message-ID") or "").strip()
    if original_id:
        fields["Original-Message-ID"] = original_id
    fields["Disposition"] = disposition(code)
    return b"Content-Type: message/disposition-notification\r\n\r\n" + fields.as_bytes(
        policy=_UNFOLDED
    ).lstrip(b"\r\n")


def _text_part(text: str) -> bytes:
    part = EmailMessage(policy=email.policy.SMTP)
    part.set_content(text, cte="quoted-printable")
    del part["MIME-Version"]
    return part.as_bytes(policy=email.policy.SMTP)


def ascii_headers(raw: bytes) -> bytes:
    """The message with each header field in raw UTF-8 RFC 2047-encoded; the body byte for byte.

    Only the top-level header block changes: S/MIME signs the body part, never these fields.
    """
    cut = raw.find(b"\r\n\r\n")
    if cut < 0 or raw[:cut].isascii():
        return raw
    fields: list[bytes] = []
    for line in raw[:cut].split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return b"\r\n".join(map(_ascii_field, fields)) + raw[cut:]


def _ascii_field(field: bytes) -> bytes:
    if field.isascii():
        return field
    name, _, value = field.partition(b":")
    header = name.decode("ascii", "replace").strip() or "X-Unreadable"
    text = " ".join(value.decode("utf-8", "replace").split())
    try:
        folded = email.policy.SMTP.header_factory(header, text).fold(policy=email.policy.SMTP)
    except (email.errors.MessageError, ValueError, IndexError, TypeError, AttributeError):
        # the email package's folder on a value it cannot parse
        folded = f"{header}: " + email.header.Header(text, "utf-8").encode(linesep="\r\n")
    return folded.encode("ascii", "replace").rstrip(b"\r\n")


def _reply_head(
    *,
    sender: str,
    to: str,
    subject: str,
    message_id: str,
    original: Message,
    order: Sequence[str],
    mss_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The header block of an answer to ``original`` (RFC 2047-encoded, Auto-Submitted), with
    the X-MSS headers of the documents it carries back (``mss.policy.mss_headers``)."""
    values = {
        "Date": email.utils.format_datetime(utcnow()),
        "From": sender,
        "To": to,
        "Message-ID": message_id,
        "Subject": subject,
    }
    head = EmailMessage(policy=email.policy.SMTP)
    for name in order:
        head[name] = values[name]
    head["Auto-Submitted"] = "auto-replied"
    for name, value in mss_headers:
        head[name] = value
    original_id = str(original.get("Message-ID") or "").strip()
    if original_id:
        head["In-Reply-To"] = original_id
        head["References"] = original_id
    return head.as_bytes(policy=email.policy.SMTP).split(b"\r\n\r\n", 1)[0] + b"\r\n"


def _multipart(header_block: bytes, content_type: bytes, parts: Sequence[bytes]) -> bytes:
    boundary = f"=_mdn_{uuid.uuid4().hex}"
    head = (
        header_block
        + b"MIME-Version: 1.0\r\nContent-Type: "
        + content_type
        + b';\r\n\tboundary="'
        + boundary.encode()
        + b'"\r\n\r\n'
    )
    delimiter = f"--{boundary}\r\n".encode()
    body = b"".join(delimiter + part.rstrip(b"\r\n") + b"\r\n" for part in parts)
    return head + body + f"--{boundary}--\r\n".encode()


def _original_part(original_raw: bytes, disposition_header: bytes = b"") -> bytes:
    rfc822 = ascii_headers(original_raw)
    rfc822 = rfc822 if rfc822.endswith(b"\r\n") else rfc822 + b"\r\n"
    return b"Content-Type: message/rfc822\r\n" + disposition_header + b"\r\n" + rfc822


def build_mdn(
    *,
    reporting_host: str,
    final_recipient: str,
    to: str,
    original_message: mss.message.Message,
    outcomes: Sequence[DocumentOutcome],
    code: int | None,
    message_id: str,
    original_recipient: str | None = None,
    mss_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The MDN's bytes: multipart/report with the text, the notification and the original.

    ``original_recipient`` is ``rfc822;<address>`` (the envelope's ORCPT, or the RCPT TO).
    """
    original = _headers_of(original_message)
    header_block = _reply_head(
        sender=final_recipient,
        to=to,
        subject=mdn_subject(_decoded(original.get("Subject")), code),
        message_id=message_id,
        original=original,
        order=("Date", "From", "Message-ID", "Subject", "To"),
        mss_headers=mss_headers,
    )
    parts = [
        _text_part(_human_text(outcomes, code)),
        _notification(final_recipient, original_recipient, reporting_host, original, code),
        _original_part(original_message.raw),
    ]
    return _multipart(
        header_block, b"multipart/report; report-type=disposition-notification", parts
    )


def _error_email_text(outcomes: Sequence[DocumentOutcome], code: int, reporting_host: str) -> str:
    """The IG example's text, with each refused document's reason added."""
    lines = [
        "Bonjour,",
        "",
        "Le document envoyé n’a pas pu être intégré correctement dans le système.",
        "Voici les détails de l’erreur rencontrée :",
        "",
        f"- Erreur détectée : {LABELS_FR[code]}",
        f"- Code d’erreur : {code}",
    ]
    lines += [
        f"- {o.title or 'document'} : {o.sentence_fr}"
        for o in outcomes
        if not o.filed and o.sentence_fr
    ]
    lines += [
        "",
        "",
        "Vous trouverez en pièce jointe :",
        "1. Le message original contenant le document soumis.",
        "2. Les fichiers liés (archive ZIP et PDF associés au message original).",
        "",
        (
            "Veuillez vérifier les informations fournies et soumettre à nouveau les documents "
            "après correction."
        ),
        "Si le problème persiste, contactez notre service technique.",
        "",
        "Cordialement,",
        f"L’équipe technique de {reporting_host}",
        "",
        "--",
        f"The document could not be filed (error {code}: {LABELS_EN[code]}).",
    ]
    lines += [
        f"- {o.title or 'document'}: {o.sentence}" for o in outcomes if not o.filed and o.sentence
    ]
    return "\n".join(lines) + "\n"


def _attachment(file: ReturnedFile) -> bytes:
    part = EmailMessage(policy=email.policy.SMTP)
    maintype, _, subtype = file.content_type.partition("/")
    part.set_content(
        file.data,
        maintype=maintype,
        subtype=subtype or "octet-stream",
        disposition="attachment",
        filename=file.filename,
        cte="base64",
    )
    part.set_param("name", file.filename)
    del part["MIME-Version"]
    return part.as_bytes(policy=email.policy.SMTP)


def build_error_email(
    *,
    reporting_host: str,
    final_recipient: str,
    to: str,
    original_message: mss.message.Message,
    outcomes: Sequence[DocumentOutcome],
    code: int,
    message_id: str,
    files: Sequence[ReturnedFile] = (),
    mss_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The IG's standard e-mail for a filing error nobody asked an MDN for (multipart/mixed)."""
    original = _headers_of(original_message)
    subject = " ".join(_decoded(original.get("Subject")).split())
    header_block = _reply_head(
        sender=final_recipient,
        to=to,
        subject=f"{ERROR_EMAIL_PREFIX}[{code}] {subject}",
        message_id=message_id,
        original=original,
        order=("Date", "From", "To", "Message-ID", "Subject"),
        mss_headers=mss_headers,
    )
    parts = [
        _text_part(_error_email_text(outcomes, code, reporting_host)),
        _original_part(
            original_message.raw,
            b'Content-Disposition: attachment; filename="message_original.eml"\r\n',
        ),
        *map(_attachment, files),
    ]
    return _multipart(header_block, b"multipart/mixed", parts)


def _headers_of(original: mss.message.Message) -> Message:
    """The original's top-level header fields as ``compat32`` reads them, from the fields the
    one reading of the message split (``mss.message``): the message is not parsed again."""
    headers = Message()
    for name, value in original.header_items():
        headers.set_raw(name, value)
    return headers


def _decoded(value: object) -> str:
    """A header value as text (RFC 2047 words decoded)."""
    if value is None:
        return ""
    return str(email.header.make_header(email.header.decode_header(str(value))))
