"""The patient's allergies, treatments and dispensations on the document API (FHIR R4 JSON).

- ``GET /fhir/AllergyIntolerance?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|<INS>`` and
  ``GET /fhir/MedicationStatement?patient.identifier=...``: the profile's allergies and
  treatments, each with its author (``recorder`` / ``informationSource``: idNat and name, or
  the patient);
- ``GET /fhir/AllergyIntolerance/<id>``, ``GET /fhir/MedicationStatement/<id>``: one item (an
  item of a record closed to the caller answers like an absent one);
- ``POST /fhir/AllergyIntolerance``, ``POST /fhir/MedicationStatement``: record one, as the
  calling professional (201 with the created resource and its Location);
- ``GET /fhir/MedicationDispense?patient.identifier=...``: the items of the record's eDISP-MED
  dispensations, newest first.

Reading follows the DMP's rule, break-glass included (``X-Break-Glass-Reason``: logged and
notified as a document read is); writing is for the médecin traitant and authorised
professionals (``mss.policy.medical_profile``). Bad input is a 400 or 422 OperationOutcome
naming the element. A connected service with ``profile:read`` reads the allergies and
treatments of its space on the same GET routes (``dmp_bridge.service_api``).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge import service_api
from dmp_bridge.access import DmpRefused
from dmp_bridge.api_auth import Caller, viewer_of
from dmp_bridge.api_common import (
    Handler,
    base_url,
    fhir_response,
    in_transaction,
    outcomes,
    patient_by_ins,
    searched_ins,
    self_url,
    viewer_with_stated_reason,
)
from dmp_bridge.dispensations import dispensation_history
from dmp_bridge.fhir_clinical import (
    ALLERGY,
    CATEGORY_OF,
    DISPENSE,
    STATEMENT,
    medication_dispense,
    parse_profile_entry,
    profile_resource,
)
from dmp_bridge.fhir_documents import FhirInputError, search_bundle
from dmp_bridge.profile_access import read_profile_item, read_profile_items, record_profile_item
from mss.bounded_json import JsonRefused, loads_bounded
from mss.db import utcnow
from mss.directory.models import Patient
from mss.profile.store import owner_of_item


def _search(kind: str) -> Handler:
    async def search(request: web.Request) -> web.StreamResponse:
        ins = searched_ins(request)

        async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
            viewer = viewer_with_stated_reason(request, caller)
            patient = await patient_by_ins(session, ins)
            if kind == DISPENSE:
                lines = await dispensation_history(session, viewer, patient)
                resources = [medication_dispense(line, patient) for line in lines]
            else:
                items = await read_profile_items(session, viewer, patient, CATEGORY_OF[kind])
                resources = [profile_resource(item, patient) for item in items]
            return fhir_response(search_bundle(resources, self_url(request)))

        return await in_transaction(request, work)

    return search


def _read(kind: str) -> Handler:
    async def read(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["id"]
        absent = FhirInputError(404, "not-found", f"no {kind} {raw}")
        if not raw.isdigit() or len(raw) > 18:
            raise absent

        async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
            viewer = viewer_with_stated_reason(request, caller)
            owner = await owner_of_item(session, int(raw))
            patient = await session.get(Patient, owner) if owner is not None else None
            if patient is None:
                raise absent
            item = await read_profile_item(session, viewer, patient, int(raw), CATEGORY_OF[kind])
            return fhir_response(profile_resource(item, patient))

        try:
            return await in_transaction(request, work)
        except DmpRefused:
            raise absent from None  # named by id: a closed record reads as an absent item

    return read


def _create(kind: str) -> Handler:
    async def create(request: web.Request) -> web.StreamResponse:
        try:
            body = loads_bounded(await request.read())
        except JsonRefused as refused:
            raise FhirInputError(400, "invalid", refused.sentence) from None
        entry = parse_profile_entry(body, kind)

        async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
            viewer = viewer_of(request, caller)
            patient = await patient_by_ins(session, entry.patient_ins)
            item = await record_profile_item(
                session,
                viewer,
                patient,
                category=entry.category,
                label=entry.label,
                detail=entry.detail,
                when=entry.when,
                code=entry.code,
                code_system=entry.code_system,
                now=utcnow(),
            )
            response = fhir_response(profile_resource(item, patient), 201)
            response.headers["Location"] = f"{base_url(request)}/fhir/{kind}/{item.id}"
            return response

        return await in_transaction(request, work)

    return create


def setup(app: web.Application) -> None:
    """Add the profile and dispensation routes (before the directory's ``/fhir/{tail}``)."""
    for kind in (ALLERGY, STATEMENT):
        # A bearer token of the catalogue is a connected service (``profile:read``).
        app.router.add_get(
            f"/fhir/{kind}",
            service_api.by_caller(outcomes(_search(kind)), service_api.profile_search(kind)),
        )
        app.router.add_get(
            f"/fhir/{kind}/{{id}}",
            service_api.by_caller(outcomes(_read(kind)), service_api.profile_read(kind)),
        )
        app.router.add_post(f"/fhir/{kind}", outcomes(_create(kind)))
    app.router.add_get(f"/fhir/{DISPENSE}", outcomes(_search(DISPENSE)))
