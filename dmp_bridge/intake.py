"""Spot an XDM package in a delivered message and queue the ``dmp.file`` job for it.

The gateway reads ``Message.carries_xdm`` and calls ``enqueue_filing`` inside its
delivery transaction, so the job exists if and only if the message was delivered.
The package is the attachment named ``IHE_XDM.zip`` (any case) of type
application/zip (or application/octet-stream, application/x-zip-compressed);
inside an opaque S/MIME signature (application/pkcs7-mime) the signed entity
is unwrapped first. Both are read from the message object's attachment index
(``mss.message``): the message is not parsed here.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mss.jobs import Job, enqueue
from mss.message import Attachment, Message

FILE_JOB = "dmp.file"


def _payloads(attachments: list[Attachment]) -> list[bytes]:
    found = []
    for attachment in attachments:
        try:
            found.append(attachment.data())
        except ValueError:
            continue  # a body that cannot be decoded carries no package
    return found


def xdm_attachments(message: Message) -> list[bytes]:
    """The bytes of every IHE_XDM.zip attachment of the message."""
    return _payloads(message.attached("xdm"))


def pdf_attachments(message: Message) -> list[bytes]:
    """The PDF renderings the message carries next to its package."""
    return _payloads(message.attached("pdf"))


def returned_files(message: Message) -> list[tuple[str, str, bytes]]:
    """(file name, content type, bytes) of the package and PDF attachments, to give them back."""
    found = []
    for attachment in message.attachments:
        if attachment.kind not in ("xdm", "pdf"):
            continue
        try:
            data = attachment.data()
        except ValueError:
            continue
        default = "IHE_XDM.zip" if attachment.kind == "xdm" else "document.pdf"
        found.append((attachment.name or default, attachment.content_type, data))
    return found


def enqueue_filing(
    session: AsyncSession,
    *,
    stored_message_id: int,
    mailbox_id: int,
    mail_from: str,
    original_recipient: str | None = None,
) -> Job:
    """Queue the filing of a delivered message's package for one patient mailbox (once).

    ``original_recipient`` (``rfc822;<address>``, from ORCPT or the RCPT TO as given)
    becomes the MDN's Original-Recipient.
    """
    return enqueue(
        session,
        FILE_JOB,
        {
            "message_id": stored_message_id,
            "mailbox_id": mailbox_id,
            "mail_from": mail_from,
            "original_recipient": original_recipient,
        },
        dedupe_key=f"{FILE_JOB}:{stored_message_id}:{mailbox_id}",
        max_attempts=5,
    )
