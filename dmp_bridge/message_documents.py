"""What the patient's record (DMP) holds of a delivered message's documents, for the portal.

``filing_outcome`` answers whether the ``dmp.file`` job has run for a message and how it
ended: the job's idempotence marker (``dmp_bridge.filing.marker``) is the DMP's own record
of that, so callers ask here rather than reading it. Statements built once at import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.filing import marker
from dmp_bridge.models import CURRENT, DmpDocument
from mss.audit import AuditEvent


@dataclass(frozen=True)
class FilingOutcome:
    """The ``dmp.file`` job ran for the message: how many documents it filed, its error code."""

    filed: int
    error: str | None

    @property
    def complete(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RecordedDocument:
    """A document of the record with its visibility flags."""

    unique_id: str
    title: str
    invisible_to_patient: bool
    invisible_to_legal_representatives: bool


_FILING = select(AuditEvent.detail).where(
    AuditEvent.action == "dmp_filing", AuditEvent.target == bindparam("marker")
)
_COLUMNS = (
    DmpDocument.unique_id,
    DmpDocument.title,
    DmpDocument.invisible_to_patient,
    DmpDocument.invisible_to_legal_representatives,
)
_FROM_MESSAGE = select(*_COLUMNS).where(
    DmpDocument.patient_id == bindparam("patient_id"),
    DmpDocument.stored_message_id == bindparam("message_id"),
    DmpDocument.source == "mss",
)
_BY_UNIQUE_ID = select(*_COLUMNS).where(
    DmpDocument.patient_id == bindparam("patient_id"),
    DmpDocument.unique_id.in_(bindparam("unique_ids", expanding=True)),
)

_ATTACHMENT_FILED = select(DmpDocument.id).where(
    DmpDocument.patient_id == bindparam("patient_id"),
    DmpDocument.stored_message_id == bindparam("message_id"),
    DmpDocument.sha256 == bindparam("sha256"),
    DmpDocument.status == CURRENT,
)


async def filing_outcome(
    session: AsyncSession, message_id: int, mailbox_id: int
) -> FilingOutcome | None:
    """How the filing of the message delivered to the mailbox ended; None if it has not run."""
    done = (await session.scalars(_FILING, {"marker": marker(message_id, mailbox_id)})).first()
    if not isinstance(done, dict):
        return None
    filed = done.get("filed")
    error = done.get("error")
    return FilingOutcome(
        filed if isinstance(filed, int) else 0, str(error) if error is not None else None
    )


async def documents_from_message(
    session: AsyncSession, patient_id: int, message_id: int
) -> list[RecordedDocument]:
    """The documents of the patient's record that the filing of this stored message put there."""
    rows = await session.execute(
        _FROM_MESSAGE, {"patient_id": patient_id, "message_id": message_id}
    )
    return [RecordedDocument(*row) for row in rows]


async def documents_by_unique_id(
    session: AsyncSession, patient_id: int, unique_ids: Iterable[str]
) -> list[RecordedDocument]:
    """The documents of the patient's record with one of these unique ids (as stored)."""
    wanted = sorted(set(unique_ids))
    if not wanted:
        return []
    rows = await session.execute(_BY_UNIQUE_ID, {"patient_id": patient_id, "unique_ids": wanted})
    return [RecordedDocument(*row) for row in rows]


async def filed_attachment(
    session: AsyncSession, patient_id: int, message_id: int, sha256: str
) -> int | None:
    """The id of the current document of the patient's record added from this stored message
    with these bytes (the patient filed that attachment already), or None."""
    return (
        await session.scalars(
            _ATTACHMENT_FILED,
            {"patient_id": patient_id, "message_id": message_id, "sha256": sha256},
        )
    ).first()
