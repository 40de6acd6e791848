"""Spot an XDM package in a delivered message and queue the ``dmp.file`` job for it.

The gateway calls ``carries_xdm`` and ``enqueue_filing`` inside its delivery
transaction, so the job exists if and only if the message was delivered.
The package is the attachment named ``IHE_XDM.zip`` (any case) of type
application/zip (or application/octet-stream, application/x-zip-compressed);
inside an opaque S/MIME signature (application/pkcs7-mime) the signed entity
is unwrapped first.
"""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.parser import BytesParser

from sqlalchemy.ext.asyncio import AsyncSession

from mss.email_policy import part_filename
from mss.jobs import Job, enqueue

FILE_JOB = "dmp.file"
XDM_FILE_NAME = "ihe_xdm.zip"
ZIP_TYPES = frozenset(
    {"application/zip", "application/octet-stream", "application/x-zip-compressed"}
)
_OPAQUE = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_PARSER = BytesParser(policy=email.policy.default)


def _unwrapped(part: Message) -> EmailMessage | None:
    """The entity inside an opaque signed-data part, or None (encrypted, compressed, unreadable).

    Its CMS contentType decides (``check_signed_data`` takes only signed-data), whatever
    ``smime-type`` says, as at the gateway (``mss.crypto.smime.read_form``).
    """
    from mss.crypto.cms import CmsFailure, check_signed_data

    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    try:
        content = check_signed_data(payload).content
    except (CmsFailure, ValueError):
        return None
    inner = _PARSER.parsebytes(content or b"")
    return inner if isinstance(inner, EmailMessage) else None


def leaf_parts(message: Message, depth: int = 0) -> Iterator[Message]:
    """Every non-multipart part, opaque S/MIME signatures unwrapped (nested at most 5 deep)."""
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_type() in _OPAQUE and depth < 5:
            inner = _unwrapped(part)
            if inner is not None:
                yield from leaf_parts(inner, depth + 1)
                continue
        yield part


def _is_xdm(part: Message) -> bool:
    name = part_filename(part).strip().lower()
    return name == XDM_FILE_NAME and part.get_content_type() in ZIP_TYPES


def xdm_attachments(message: Message) -> list[bytes]:
    """The bytes of every IHE_XDM.zip attachment of the message."""
    found = []
    for part in leaf_parts(message):
        if _is_xdm(part):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found.append(data)
    return found


def pdf_attachments(message: Message) -> list[bytes]:
    """The PDF renderings the message carries next to its package."""
    found = []
    for part in leaf_parts(message):
        if part.get_content_type() == "application/pdf":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found.append(data)
    return found


def returned_files(message: Message) -> list[tuple[str, str, bytes]]:
    """(file name, content type, bytes) of the package and PDF attachments, to give them back."""
    found = []
    for part in leaf_parts(message):
        if _is_xdm(part) or part.get_content_type() == "application/pdf":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                name = part_filename(part) or ("IHE_XDM.zip" if _is_xdm(part) else "document.pdf")
                found.append((name, part.get_content_type(), data))
    return found


_HINTS = (b"ihe_xdm", b"pkcs7-mime", b"filename*", b"=?")


def carries_xdm(raw: bytes, message: Message | None = None) -> bool:
    """True when the raw message has an IHE_XDM.zip attachment (parsed only if a name may be there).

    ``message`` is the already parsed ``raw`` (the gateway's one parse), so it is not parsed again.
    """
    lowered = raw.lower()
    if not any(hint in lowered for hint in _HINTS):
        return False
    return any(
        _is_xdm(part)
        for part in leaf_parts(message if message is not None else _PARSER.parsebytes(raw))
    )


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
