""" "Médicaments délivrés": the dispensation timeline of the current space's record.

The items come from the record's eDISP-MED documents (``dmp_bridge.dispensations``), read
through the consent engine: a dispensation hidden from the patient (or from guardians) is
not on the timeline, and the read is an audit event of the access history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dmp_bridge.access import DmpRefused
from dmp_bridge.dispensations import Dispensation, dispensation_history
from mss.policy.decision import Decision
from portal.context import db_of
from portal.french import day, month
from portal.pages import render, signed_in
from portal.record import closed_reason, common, is_no_record, refused, space_patient, viewer_of


@dataclass(frozen=True)
class DispensationLine:
    """One medicine given, as the timeline shows it."""

    medicine: str
    quantity: str
    dose: str
    day: str
    iso: str
    pharmacy: str
    document_id: int


def describe(line: Dispensation) -> DispensationLine:
    item = line.item
    return DispensationLine(
        medicine=item.medicine,
        quantity=item.quantity_text,
        dose=item.dose,
        day=day(line.when),
        iso=line.when.isoformat(),
        pharmacy=item.pharmacy,
        document_id=line.document_id,
    )


def by_month(found: list[Dispensation]) -> list[tuple[str, list[DispensationLine]]]:
    """The timeline cut by month, newest first: ("novembre 2026", [lines])."""
    groups: dict[str, list[DispensationLine]] = {}
    for line in found:
        groups.setdefault(month(line.when), []).append(describe(line))
    return list(groups.items())


@signed_in
async def dispensations(request: web.Request) -> web.StreamResponse:
    """Every medicine the pharmacies gave, newest first, month by month."""
    viewer = viewer_of(request)
    found: list[Dispensation] = []
    closed, decision = "", None
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        try:
            found = await dispensation_history(session, viewer, patient)
        except DmpRefused as error:
            if is_no_record(error):
                closed = await closed_reason(session, patient)
            else:
                refusal: Decision = error.decision
                decision = refusal
    if decision is not None:
        return await refused(request, decision)
    return await render(
        request,
        "dossier_medicaments.html",
        common(
            request,
            tab="medicaments",
            title="Médicaments délivrés",
            closed=closed,
            months=by_month(found),
            count=len(found),
        ),
    )


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("/dossier/medicaments", "dossier_dispensations", {"GET": dispensations}),
]
