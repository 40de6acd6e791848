"""Which attachments of a received message carry a DMP document hidden from the viewer.

The decision is ``mss.policy.message_attachments``; this module gathers its
facts once per message, for the message page and for "Mon dossier" alike.
"""

from __future__ import annotations

from typing import Any

from mss.db import Database
from mss.mailbox.models import StoredMessage
from mss.policy.consent import ViewerKind
from mss.policy.message_attachments import (
    NOTHING_WITHHELD,
    AttachmentFacts,
    WithheldAttachments,
    carries_package,
    decide_withheld_attachments,
    is_package,
)
from portal.message_content import Attachment, decode_part, find_part
from portal.messages import package_facts


async def withheld_attachments(
    db: Database,
    viewer: ViewerKind,
    *,
    patient_id: int,
    mailbox_id: int,
    message: StoredMessage,
    raw: bytes,
    structure: dict[str, Any],
    attachments: list[Attachment],
) -> WithheldAttachments:
    """The attachments of ``message`` that carry a document hidden from ``viewer``."""
    listed = [AttachmentFacts(a.part, a.filename, a.content_type) for a in attachments]
    if not carries_package(listed):
        return NOTHING_WITHHELD

    def packages() -> list[bytes]:
        nodes = [find_part(structure, a.part) for a in listed if is_package(a)]
        return [decode_part(raw, node) for node in nodes if node is not None]

    facts = await package_facts(
        db, patient_id=patient_id, mailbox_id=mailbox_id, message_id=message.id, packages=packages
    )
    return decide_withheld_attachments(viewer, listed, facts)
