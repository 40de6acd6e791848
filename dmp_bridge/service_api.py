"""The FHIR endpoints as a connected service calls them, with its bearer token.

The same routes as professionals, chosen by the ``Authorization`` scheme (``by_caller``):
``DocumentReference`` search and read and ``Binary`` (``documents:<type>``),
``AllergyIntolerance`` and ``MedicationStatement`` search and read (``profile:read``),
``Appointment`` search and read and the ``/agenda/<INS>.ics`` feed (``agenda:read``); and
``POST /fhir/Observation`` for the measurements a service writes (``measurements:write``).
The token is bound to one patient's space: a search for another patient is 403; what the
service may see is decided by ``mss.policy.services`` (``dmp_bridge.service_documents``); a
document, item or appointment outside it answers 404 like an absent one; a scope not granted
is 403 with the RFC 6750 ``insufficient_scope`` challenge. Every use is an audit event naming
the service. Answers and refusals are ``dmp_bridge.api_common``'s, as for professionals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused
from dmp_bridge.api_auth import BearerRefused, authenticate_service, presents_bearer
from dmp_bridge.api_common import (
    SANDBOX,
    Handler,
    base_url,
    fhir_response,
    outcomes,
    searched_ins,
    self_url,
)
from dmp_bridge.fhir_appointment_resources import appointment_resource, calendar_response
from dmp_bridge.fhir_clinical import CATEGORY_OF, profile_resource
from dmp_bridge.fhir_documents import (
    FHIR_JSON,
    FhirInputError,
    binary_resource,
    document_reference,
    parse_patient_identifier,
    search_bundle,
)
from dmp_bridge.service_documents import (
    decide_for_service,
    get_document_for_service,
    list_documents_for_service,
    read_agenda_for_service,
    read_appointment_for_service,
    read_profile_for_service,
    read_profile_item_for_service,
)
from mss.bounded_json import JsonRefused, loads_bounded
from mss.catalogue.observations import ObservationRefused, observation_resource, parse_observation
from mss.catalogue.store import add_measurement
from mss.catalogue.tokens import Bearer
from mss.db import utcnow
from mss.policy.agenda import AGENDA_NOT_FOUND
from mss.policy.consent import answer_by_document_id
from mss.policy.dmp_metadata import served_format
from mss.policy.services import ServiceAction
from mss.web import DB, attachment_disposition

SEARCH_PARAMETERS = frozenset({"patient.identifier", "status"})
STATUSES = ("current", "superseded")


def by_caller(professional: Handler, service: Handler) -> Handler:
    """One route for both kinds of caller: a bearer token of the catalogue
    (``mss.catalogue.tokens.is_service_token``) is a service, anything else is not."""
    served = outcomes(service)

    async def handler(request: web.Request) -> web.StreamResponse:
        if presents_bearer(request):
            return await served(request)
        return await professional(request)

    return handler


def _own_space(ins: str, bearer: Bearer) -> None:
    if ins.upper() != bearer.patient.ins.upper():
        raise FhirInputError(403, "forbidden", "this token was given for another patient's space")


def _numeric_id(raw: str, absent: FhirInputError) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise absent
    return int(raw)


async def _as_service(
    request: web.Request, work: Callable[[AsyncSession, Bearer], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Authenticate the token and run ``work`` in one transaction; a refusal still commits its
    audit event."""
    async with request.app[DB].write() as session:
        bearer = await authenticate_service(request, session)
        try:
            return await work(session, bearer)
        except DmpRefused as refused:
            failure = refused
    raise failure


async def find(request: web.Request) -> web.StreamResponse:
    """ITI-67 for a service: the documents of its space it may see."""
    unknown = set(request.query) - SEARCH_PARAMETERS
    if unknown:
        raise FhirInputError(
            400, "not-supported", f"unknown search parameter(s) {', '.join(sorted(unknown))}"
        )
    identifier = request.query.get("patient.identifier")
    if not identifier:
        raise FhirInputError(400, "required", "patient.identifier is required (ITI-67)")
    _oid, ins = parse_patient_identifier(identifier)
    wanted = [s.strip() for s in request.query.get("status", "current").split(",") if s.strip()]
    if not wanted or any(s not in STATUSES for s in wanted):
        raise FhirInputError(400, "invalid", "status must be current and/or superseded")

    async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
        _own_space(ins, bearer)
        documents = await list_documents_for_service(
            session, bearer, include_replaced="superseded" in wanted
        )
        seen = {d.id for d in documents}
        chosen = [
            d
            for d in documents
            if ("superseded" if d.status == "replaced" else "current") in wanted
        ]
        resources = [
            document_reference(
                d,
                bearer.patient,
                base_url(request),
                d.replaces_id if d.replaces_id in seen else None,
            )
            for d in chosen
        ]
        return fhir_response(search_bundle(resources, self_url(request)))

    return await _as_service(request, work)


def _document_id(raw: str) -> tuple[int, str]:
    ident, pdf, rest = raw.partition("-pdf")
    if not ident.isdigit() or (pdf and rest) or len(ident) > 18:
        raise FhirInputError(404, "not-found", f"no document {raw}")
    return int(ident), "pdf" if pdf else "original"


async def _by_id(request: web.Request, rendition_of: str) -> web.StreamResponse:
    document_id, rendition = _document_id(request.match_info["id"])
    if rendition_of == "reference" and rendition != "original":
        raise FhirInputError(404, "not-found", f"no DocumentReference {request.match_info['id']}")

    async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
        document, data = await get_document_for_service(
            session, bearer, document_id, rendition=rendition
        )
        if rendition_of == "reference":
            return fhir_response(document_reference(document, bearer.patient, base_url(request)))
        content_type, extension = served_format(
            "application/pdf" if rendition == "pdf" else document.mime_type
        )
        if FHIR_JSON in request.headers.get("Accept", ""):
            return fhir_response(binary_resource(request.match_info["id"], content_type, data))
        title = document.title or document.type_label or "document"
        return web.Response(
            body=data,
            headers={
                "Content-Type": content_type,
                "Cache-Control": "no-store",
                "Content-Disposition": attachment_disposition(title, extension),
                **SANDBOX,
            },
        )

    try:
        return await _as_service(request, work)
    except DmpRefused as refused:
        raise DmpRefused(answer_by_document_id(refused.decision)) from None


async def read_reference(request: web.Request) -> web.StreamResponse:
    return await _by_id(request, "reference")


async def retrieve(request: web.Request) -> web.StreamResponse:
    return await _by_id(request, "binary")


async def create_observation(request: web.Request) -> web.StreamResponse:
    """A measurement of the service's space (``measurements:write``): 201 and the Observation."""
    if not presents_bearer(request):
        raise BearerRefused("a connected service writes measurements with its bearer token")
    try:
        body = loads_bounded(await request.read())
    except JsonRefused as refused:
        raise FhirInputError(400, "invalid", refused.sentence) from None

    async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
        await decide_for_service(session, bearer, ServiceAction.WRITE_MEASUREMENT)
        try:
            parsed = parse_observation(body, utcnow())
        except ObservationRefused as refused:
            raise FhirInputError(422, "invalid", refused.sentence) from None
        _own_space(parsed.subject_ins, bearer)
        stored = await add_measurement(
            session,
            bearer.patient,
            bearer.service,
            code=parsed.code,
            value=parsed.value,
            unit=parsed.unit,
            status=parsed.status,
            effective_at=parsed.effective_at,
        )
        response = fhir_response(observation_resource(stored.id, parsed, bearer.patient.ins), 201)
        response.headers["Location"] = f"{base_url(request)}/fhir/Observation/{stored.id}"
        return response

    return await _as_service(request, work)


def profile_search(kind: str) -> Handler:
    """The profile's allergies or treatments (``profile:read``), as a searchset."""

    async def search(request: web.Request) -> web.StreamResponse:
        ins = searched_ins(request)

        async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
            _own_space(ins, bearer)
            items = await read_profile_for_service(session, bearer, CATEGORY_OF[kind])
            resources = [profile_resource(item, bearer.patient) for item in items]
            return fhir_response(search_bundle(resources, self_url(request)))

        return await _as_service(request, work)

    return search


def profile_read(kind: str) -> Handler:
    """One item of the space's profile; every refusal answers like an absent item."""

    async def read(request: web.Request) -> web.StreamResponse:
        absent = FhirInputError(404, "not-found", f"no {kind} {request.match_info['id']}")
        item_id = _numeric_id(request.match_info["id"], absent)

        async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
            item = await read_profile_item_for_service(session, bearer, item_id, CATEGORY_OF[kind])
            return fhir_response(profile_resource(item, bearer.patient))

        try:
            return await _as_service(request, work)
        except DmpRefused:
            raise absent from None

    return read


async def agenda_find(request: web.Request) -> web.StreamResponse:
    """The appointments of the space's agenda (``agenda:read``), soonest first."""
    ins = searched_ins(request)

    async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
        _own_space(ins, bearer)
        appointments = await read_agenda_for_service(session, bearer, form="fhir")
        resources = [appointment_resource(a, bearer.patient) for a in appointments]
        return fhir_response(search_bundle(resources, self_url(request)))

    return await _as_service(request, work)


async def agenda_read(request: web.Request) -> web.StreamResponse:
    """One appointment, named by its id: every refusal answers like an absent appointment."""
    absent = FhirInputError(404, "not-found", f"no Appointment {request.match_info['id']}")
    appointment_id = _numeric_id(request.match_info["id"], absent)

    async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
        appointment = await read_appointment_for_service(session, bearer, appointment_id)
        return fhir_response(appointment_resource(appointment, bearer.patient))

    try:
        return await _as_service(request, work)
    except DmpRefused:
        raise DmpRefused(AGENDA_NOT_FOUND) from None


async def agenda_feed(request: web.Request) -> web.StreamResponse:
    """The space's agenda as an iCalendar feed (``agenda:read``)."""
    ins = request.match_info["ins"].strip().upper()

    async def work(session: AsyncSession, bearer: Bearer) -> web.StreamResponse:
        _own_space(ins, bearer)
        appointments = await read_agenda_for_service(session, bearer, form="ics")
        return calendar_response(bearer.patient, appointments)

    return await _as_service(request, work)


def setup(app: web.Application) -> None:
    """The routes only a service calls (those it shares are wrapped by ``by_caller``)."""
    app.router.add_post("/fhir/Observation", outcomes(create_observation))
