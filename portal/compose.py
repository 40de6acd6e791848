"""The messages a patient writes in the portal, as RFC 5322 bytes for the gateway.

A reply names the message it answers (In-Reply-To, References), which is
what the professional-initiates rule checks; a new message to a pharmacy
carries the prescription as an attachment. Nothing is decided here.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage

from mss.mailbox.headers import first, split_headers
from mss.mailbox.models import StoredMessage

MAX_TEXT = 20_000
MAX_SUBJECT = 200
MAX_REFERENCES = 20
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Upload:
    """A file the patient attached: its name, the type the browser declared, its bytes."""

    filename: str
    declared_type: str
    data: bytes


@dataclass(frozen=True)
class Author:
    """Whose mailbox sends (the space) and, for a guardian, who wrote for them."""

    address: str
    name: str
    written_by: str = ""  # the guardian's name when acting for a minor

    @property
    def display_name(self) -> str:
        if self.written_by:
            return f"{self.name} (par {self.written_by}, représentant légal)"
        return self.name


def sniff_type(data: bytes) -> str | None:
    """What the bytes really are, for the types a prescription may be sent as."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "application/pdf"
    return None


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """A header value typed by a person: one line, no control characters, bounded."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())[:limit]


def reply_subject(subject: str) -> str:
    subject = one_line(subject)
    return subject if subject.lower().startswith(("re:", "re :")) else f"Re: {subject}"


def references_of(original: StoredMessage) -> tuple[str, ...]:
    """The References of a reply: the original's own (bounded) then its Message-ID."""
    fields = split_headers(original.headers_text.encode())
    cited = _MSGID.findall(first(fields, "References") or "") or _MSGID.findall(
        first(fields, "In-Reply-To") or ""
    )
    own = _MSGID.findall(original.message_id_header)
    return (*cited[-(MAX_REFERENCES - 1) :], *own[:1])


def build_message(
    author: Author,
    to: str,
    subject: str,
    text: str,
    message_id: str,
    *,
    now: dt.datetime,
    in_reply_to: str = "",
    references: Sequence[str] = (),
    uploads: Sequence[Upload] = (),
) -> bytes:
    """A text/plain message (multipart/mixed with the uploads), CRLF line endings, UTF-8."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = Address(display_name=one_line(author.display_name), addr_spec=author.address)
    message["To"] = to
    message["Subject"] = one_line(subject)
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = " ".join(references or (in_reply_to,))
    message.set_content(text[:MAX_TEXT] + ("" if text.endswith("\n") else "\n"))
    for upload in uploads:
        maintype, _, subtype = upload.declared_type.partition("/")
        message.add_attachment(
            upload.data, maintype=maintype, subtype=subtype, filename=upload.filename
        )
    return message.as_bytes()
