"""The FHIR endpoints as a connected service calls them, with its bearer token.

The same routes as professionals (``DocumentReference`` search and read, ``Binary``),
chosen by the ``Authorization`` scheme (``by_caller``), and ``POST /fhir/Observation``
for the measurements a service writes. The token is bound to one patient's space: a
search for another patient is 403; what the service may see is decided by
``mss.policy.services`` (``dmp_bridge.service_documents``); a document outside it
answers 404 like an absent one. Every use is an audit event naming the service.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused
from dmp_bridge.api_auth import BearerRefused, authenticate_service, presents_bearer
from dmp_bridge.fhir_documents import (
    FHIR_JSON,
    FhirInputError,
    binary_resource,
    document_reference,
    operation_outcome,
    parse_patient_identifier,
    search_bundle,
)
from dmp_bridge.service_documents import (
    decide_for_service,
    get_document_for_service,
    list_documents_for_service,
)
from mss.bounded_json import JsonRefused, loads_bounded
from mss.catalogue.observations import ObservationRefused, observation_resource, parse_observation
from mss.catalogue.store import add_measurement
from mss.catalogue.tokens import Bearer
from mss.db import utcnow
from mss.errors import DatabaseUnavailable
from mss.notify import portal_url
from mss.policy.consent import answer_by_document_id
from mss.policy.dmp_metadata import served_format
from mss.policy.services import ServiceAction
from mss.web import DB, SETTINGS, attachment_disposition

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SEARCH_PARAMETERS = frozenset({"patient.identifier", "status"})
STATUSES = ("current", "superseded")
_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 422: "processing"}
# As every answer of the document API: nothing it sends is a page.
SANDBOX = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
}


def _fhir(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=FHIR_JSON,
        charset="utf-8",
        headers=SANDBOX,
    )


def _refusal(status: int, code: str, text: str, challenge: str | None = None) -> web.Response:
    response = _fhir(operation_outcome(code, text), status)
    if challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    return response


def _outcomes(handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BearerRefused as refused:
            return _refusal(401, refused.code, refused.text, refused.challenge)
        except FhirInputError as exc:
            return _refusal(exc.status, exc.code, exc.text)
        except DmpRefused as exc:
            decision = exc.decision
            text = f"{decision.sentence} / {decision.sentence_fr}"
            challenge = None
            if decision.reason == "insufficient_scope":  # RFC 6750 §3.1
                challenge = 'Bearer realm="MSS DMP", error="insufficient_scope"'
            return _refusal(
                decision.status, _ISSUE.get(decision.status, "processing"), text, challenge
            )
        except DatabaseUnavailable as exc:
            return _refusal(503, "transient", exc.sentence)

    return wrapper


def by_caller(professional: Handler, service: Handler) -> Handler:
    """One route for both kinds of caller: a bearer token is a service, anything else is not."""
    served = _outcomes(service)

    async def handler(request: web.Request) -> web.StreamResponse:
        if presents_bearer(request):
            return await served(request)
        return await professional(request)

    return handler


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


def _base(request: web.Request) -> str:
    return portal_url(request.app[SETTINGS])


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
        if ins.upper() != bearer.patient.ins.upper():
            raise FhirInputError(
                403, "forbidden", "this token was given for another patient's space"
            )
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
                d, bearer.patient, _base(request), d.replaces_id if d.replaces_id in seen else None
            )
            for d in chosen
        ]
        return _fhir(search_bundle(resources, _base(request) + str(request.rel_url)))

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
            return _fhir(document_reference(document, bearer.patient, _base(request)))
        content_type, extension = served_format(
            "application/pdf" if rendition == "pdf" else document.mime_type
        )
        if FHIR_JSON in request.headers.get("Accept", ""):
            return _fhir(binary_resource(request.match_info["id"], content_type, data))
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
        if parsed.subject_ins.upper() != bearer.patient.ins.upper():
            raise FhirInputError(
                403, "forbidden", "this token was given for another patient's space"
            )
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
        response = _fhir(observation_resource(stored.id, parsed, bearer.patient.ins), 201)
        response.headers["Location"] = f"{_base(request)}/fhir/Observation/{stored.id}"
        return response

    return await _as_service(request, work)


def setup(app: web.Application) -> None:
    """The routes only a service calls (those it shares are wrapped by ``by_caller``)."""
    app.router.add_post("/fhir/Observation", _outcomes(create_observation))
