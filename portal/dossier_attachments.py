"""PDF attachments of the messages the space received, read through the mailbox store, for "Mon dossier".

Only the INBOX of the space's own mailbox is searched (``find_entry`` scopes
an entry to it), so an id in a URL never reaches another mailbox. The
bytes are decoded from the stored message as the message page serves them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mss.mailbox.store import INBOX
from portal.message_content import Attachment, decode_part, find_part, read_content, shown_entity
from portal.messages import Directory, find_entry, folder_lines, local_time

MAX_MESSAGES = 30  # the newest received messages searched for PDFs
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})


@dataclass(frozen=True)
class ReceivedPdf:
    """One PDF attachment of one received message."""

    entry_id: int
    part: str
    filename: str
    size_text: str
    subject: str
    sender: str
    when: str
    stored_message_id: int
    message_id: str
    received_at: dt.datetime


def is_pdf(attachment: Attachment) -> bool:
    return attachment.content_type in PDF_TYPES or attachment.filename.lower().endswith(".pdf")


async def received_pdfs(session: AsyncSession, mailbox_id: int) -> list[ReceivedPdf]:
    """The PDF attachments of the newest received messages, newest first."""
    directory = Directory(session)
    found: list[ReceivedPdf] = []
    lines = [line for line in await folder_lines(session, mailbox_id, INBOX)
             if line.top_type.startswith("multipart/") or "pkcs7" in line.top_type][:MAX_MESSAGES]
    for line in lines:
        located = await find_entry(session, mailbox_id, line.entry_id)
        if located is None:
            continue
        raw, structure = shown_entity(located.message.raw, located.message.bodystructure)
        for attachment in read_content(raw, structure).attachments:
            if is_pdf(attachment):
                sender = (await directory.by_address(line.from_address)).name
                found.append(ReceivedPdf(line.entry_id, attachment.part, attachment.filename,
                                         attachment.size_text, line.subject, sender, local_time(line.when),
                                         located.message.id, located.message.message_id_header, line.when))
    return found


async def load_received_pdf(session: AsyncSession, mailbox_id: int, entry_id: int,
                            part: str) -> tuple[ReceivedPdf, bytes] | None:
    """One PDF attachment of a received message of the mailbox, with its decoded bytes; None if absent
    (or not a PDF)."""
    located = await find_entry(session, mailbox_id, entry_id)
    if located is None or not located.received:
        return None
    message = located.message
    raw, structure = shown_entity(message.raw, message.bodystructure)
    listed = next((a for a in read_content(raw, structure).attachments if a.part == part), None)
    node = find_part(structure, part) if listed is not None else None
    if listed is None or node is None or not is_pdf(listed):
        return None
    sender = (await Directory(session).by_address(message.from_address)).name
    described = ReceivedPdf(entry_id, part, listed.filename, listed.size_text, message.subject, sender,
                            local_time(message.internal_date), message.id, message.message_id_header,
                            message.internal_date)
    return described, decode_part(raw, node)
