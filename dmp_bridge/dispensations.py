"""The dispensation history of a record: the items of its eDISP-MED documents, newest first.

The items are read from the stored CDA each time they are shown, not copied
into a table: the document is the record's one source (a replaced version's
items give way to the new version's, a deleted or masked document's items
disappear with it, by the same consent filter as the documents list), and
every dispensation was read whole before it was filed, so reading it again
cannot fail on good data. A record holds a few dispensations a month; each
reads in well under a millisecond.

The access is one consent decision (the record's list, break-glass
included) and one audit event, ``dispensation_history_read``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import Viewer, audit
from dmp_bridge.consent_store import consent_facts
from dmp_bridge.dispensation import DISPENSATION_TYPE, DispensedItem, read_dispensation
from dmp_bridge.documents import decide, document_facts
from dmp_bridge.errors import XdmError
from dmp_bridge.models import CURRENT, DmpDocument
from mss.directory.models import Patient
from mss.policy.consent import DmpAction, can_see

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dispensation:
    """One dispensed item with the document it comes from."""

    document_id: int
    rank: int  # 1-based, in the document
    item: DispensedItem
    when: dt.datetime  # the item's date, else the document's

    @property
    def resource_id(self) -> str:
        """The id of its FHIR MedicationDispense: ``<document id>-<rank>``."""
        return f"{self.document_id}-{self.rank}"


def _read_all(contents: dict[int, bytes]) -> dict[int, list[DispensedItem]]:
    """Each document's items (off the event loop); one that cannot be read is left out."""
    read: dict[int, list[DispensedItem]] = {}
    for document_id, content in contents.items():
        try:
            read[document_id] = read_dispensation(content)
        except XdmError as error:  # filed before the check, or by a path that does not read it
            log.warning("dispensation %s not shown: %s", document_id, error.sentence)
    return read


async def dispensation_history(
    session: AsyncSession, viewer: Viewer, patient: Patient
) -> list[Dispensation]:
    """Every item of the eDISP-MED documents ``viewer`` may see, newest first."""
    await decide(session, viewer, patient, DmpAction.LIST)
    documents = (
        await session.scalars(
            select(DmpDocument).where(
                DmpDocument.patient_id == patient.id,
                DmpDocument.status == CURRENT,
                DmpDocument.type_code == DISPENSATION_TYPE,
            )
        )
    ).all()
    facts = await viewer.facts(session, patient)
    consent = await consent_facts(session, patient)
    visible = [d for d in documents if can_see(facts, consent, document_facts(d))]
    contents: dict[int, bytes] = {}
    if visible:
        rows = await session.execute(
            select(DmpDocument.id, DmpDocument.content).where(
                DmpDocument.id.in_([d.id for d in visible])
            )
        )
        contents = {ident: bytes(content) for ident, content in rows.all()}
    read = await asyncio.to_thread(_read_all, contents)
    lines: list[Dispensation] = []
    for document in visible:
        fallback = document.creation_time or document.filed_at
        lines += [
            Dispensation(document.id, n, item, item.dispensed_at or fallback)
            for n, item in enumerate(read.get(document.id, []), start=1)
        ]
    lines.sort(key=lambda line: (line.when, line.document_id, -line.rank), reverse=True)
    await audit(
        session,
        "dispensation_history_read",
        viewer,
        patient,
        count=len(lines),
        reason=viewer.break_glass_reason or None,
    )
    return lines
