"""The read receipt a patient's portal sends: an RFC 8098 "displayed" MDN.

The report says the message was shown to the patient, nothing more (RFC 8098
section 3.2.6.2: "displayed" does not mean read or understood). It does not
carry the original message back: its sender already has it.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import uuid
from email.headerregistry import Address
from email.message import EmailMessage

from mss.mailbox.models import StoredMessage
from portal.clock import PARIS
from portal.compose import Author, one_line, references_of

DISPOSITION = "manual-action/MDN-sent-automatically; displayed"


def _text_part(subject: str, reader: str, when: dt.datetime) -> bytes:
    local = when.astimezone(PARIS)
    text = (
        f"Le message « {subject} » a été affiché dans l'espace santé de {reader} "
        f"le {local:%d/%m/%Y à %H h %M}.\n\n"
        "Cet accusé indique seulement que le message a été ouvert : il ne garantit pas "
        "qu'il a été lu ou compris.\n"
    )
    part = EmailMessage(policy=email.policy.SMTP)
    part.set_content(text, cte="quoted-printable")
    del part["MIME-Version"]
    return part.as_bytes()


def _notification(reporting_host: str, final_recipient: str, original: StoredMessage) -> bytes:
    fields = [
        f"Reporting-UA: {reporting_host}; Messagerie sante, portail patient",
        f"Final-Recipient: rfc822; {final_recipient}",
    ]
    if original.message_id_header:
        fields.append(f"Original-Message-ID: {original.message_id_header}")
    fields.append(f"Disposition: {DISPOSITION}")
    return (
        "Content-Type: message/disposition-notification\r\n\r\n" + "\r\n".join(fields) + "\r\n"
    ).encode("utf-8")


def build_displayed_mdn(
    author: Author,
    to: str,
    original: StoredMessage,
    message_id: str,
    *,
    reporting_host: str,
    now: dt.datetime,
) -> bytes:
    """The MDN's bytes: multipart/report (text, message/disposition-notification), CRLF."""
    subject = one_line(original.subject) or "(sans objet)"
    head = EmailMessage(policy=email.policy.SMTP)
    head["From"] = Address(display_name=one_line(author.display_name), addr_spec=author.address)
    head["To"] = to
    head["Subject"] = one_line(f"Accusé de lecture : {subject}")
    head["Date"] = email.utils.format_datetime(now)
    head["Message-ID"] = message_id
    head["Auto-Submitted"] = "auto-replied"
    references = references_of(original)
    if original.message_id_header:
        head["In-Reply-To"] = original.message_id_header
        head["References"] = " ".join(references)
    boundary = f"=_mdn_{uuid.uuid4().hex}"
    header_block = head.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n"
    header_block += (
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; "
        b'report-type=disposition-notification;\r\n\tboundary="' + boundary.encode() + b'"\r\n\r\n'
    )
    parts = [
        _text_part(subject, author.name, now),
        _notification(reporting_host, author.address, original),
    ]
    delimiter = f"--{boundary}\r\n".encode()
    body = b"".join(delimiter + part.rstrip(b"\r\n") + b"\r\n" for part in parts)
    return header_block + body + f"--{boundary}--\r\n".encode()
