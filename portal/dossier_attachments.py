"""PDF attachments of the messages the space received, read through the mailbox store, for "Mon
dossier".

Only the INBOX of the space's own mailbox is searched (``find_entry`` scopes
an entry to it), so an id in a URL never reaches another mailbox. The
bytes are decoded from the stored message as the message page serves them.
A PDF that carries a DMP document hidden from the viewer is withheld here
exactly as on the message page (``portal.withheld``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from mss.db import Database
from mss.mailbox.models import StoredMessage
from mss.mailbox.store import INBOX
from mss.policy.consent import ViewerKind
from portal.message_content import Attachment, decode_part, find_part, read_content, shown_entity
from portal.messages import Directory, find_entries, find_entry, folder_lines, local_time
from portal.withheld import withheld_attachments

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


async def received_pdfs(
    db: Database, viewer: ViewerKind, *, patient_id: int, mailbox_id: int
) -> list[ReceivedPdf]:
    """The PDF attachments of the newest received messages the viewer may see, newest first."""
    found: list[ReceivedPdf] = []
    async with db.read() as session:
        directory = Directory(session)
        lines = [
            line
            for line in await folder_lines(session, mailbox_id, INBOX)
            if line.top_type.startswith("multipart/") or "pkcs7" in line.top_type
        ][:MAX_MESSAGES]
        located = await find_entries(session, mailbox_id, [line.entry_id for line in lines])
        await directory.describe(addresses={line.from_address for line in lines})
        senders = {
            line.from_address: (await directory.by_address(line.from_address)).name
            for line in lines
        }
    lines = [line for line in lines if line.entry_id in located]
    # Unwrapping opaque S/MIME checks a CMS structure: CPU work, done off the event loop.
    shown = await asyncio.to_thread(
        lambda: [_attachments_of(located[line.entry_id].message) for line in lines]
    )
    for line, (raw, structure, attachments) in zip(lines, shown, strict=True):
        message = located[line.entry_id].message
        withheld = await withheld_attachments(
            db,
            viewer,
            patient_id=patient_id,
            mailbox_id=mailbox_id,
            message=message,
            raw=raw,
            structure=structure,
            attachments=attachments,
        )
        for attachment in attachments:
            if is_pdf(attachment) and attachment.part not in withheld.parts:
                found.append(
                    ReceivedPdf(
                        line.entry_id,
                        attachment.part,
                        attachment.filename,
                        attachment.size_text,
                        line.subject,
                        senders[line.from_address],
                        local_time(line.when),
                        message.id,
                        message.message_id_header,
                        line.when,
                    )
                )
    return found


def _attachments_of(message: StoredMessage) -> tuple[bytes, dict[str, Any], list[Attachment]]:
    """The shown entity of a stored message (``shown_entity``) and its attachments."""
    raw, structure = shown_entity(message.raw, message.bodystructure)
    return raw, structure, read_content(raw, structure).attachments


async def load_received_pdf(
    db: Database, viewer: ViewerKind, *, patient_id: int, mailbox_id: int, entry_id: int, part: str
) -> tuple[ReceivedPdf, bytes] | None:
    """One PDF attachment of a received message of the mailbox, with its decoded bytes; None if
    absent,
    not a PDF, or withheld from the viewer."""
    async with db.read() as session:
        located = await find_entry(session, mailbox_id, entry_id)
        if located is None or not located.received:
            return None
        message = located.message
        sender = (await Directory(session).by_address(message.from_address)).name
    raw, structure, attachments = await asyncio.to_thread(_attachments_of, message)
    listed = next((a for a in attachments if a.part == part), None)
    node = find_part(structure, part) if listed is not None else None
    if listed is None or node is None or not is_pdf(listed):
        return None
    withheld = await withheld_attachments(
        db,
        viewer,
        patient_id=patient_id,
        mailbox_id=mailbox_id,
        message=message,
        raw=raw,
        structure=structure,
        attachments=attachments,
    )
    if part in withheld.parts:
        return None
    described = ReceivedPdf(
        entry_id,
        part,
        listed.filename,
        listed.size_text,
        message.subject,
        sender,
        local_time(message.internal_date),
        message.id,
        message.message_id_header,
        message.internal_date,
    )
    return described, decode_part(raw, node)
