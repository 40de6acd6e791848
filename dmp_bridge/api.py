"""The professional document API (IHE MHD style, FHIR R4 JSON) on the HTTPS application.

- ``GET /fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|<INS>``
  (ITI-67 find; ``status=current|superseded``; the test OID 1.2.250.1.213.1.4.10 too)
- ``GET /fhir/DocumentReference/<id>`` (read)
- ``GET /fhir/Binary/<id>`` and ``/fhir/Binary/<id>-pdf`` (ITI-68 retrieve: the bytes, or a
  Binary resource when ``Accept: application/fhir+json``)
- ``POST /fhir`` (ITI-65 provide: a transaction Bundle of DocumentReference + Binary; formats
  and confidentiality codes as ``mss.policy.dmp_metadata`` accepts them; JSON nested at most
  ``MAX_JSON_DEPTH`` deep)

A document's bytes are always a download in a sandbox (``Content-Disposition:
attachment``, ``nosniff``, CSP ``default-src 'none'; sandbox``): the API shares its
origin with the portal. A document named by id, in a record closed to the
caller, answers exactly like an absent one. Links are built on the configured
public address (``portal_url``), never on the request's Host header.

The caller is a professional (``dmp_bridge.api_auth``); every access goes
through the consent engine and the audit log (``dmp_bridge.documents``).
- ``type=[system|]code`` narrows the search to one document type, e.g.
  ``http://loinc.org|60593-1`` for the eDISP-MED dispensations

The patient's allergies, treatments and dispensations are ``dmp_bridge.clinical_api``
(AllergyIntolerance, MedicationStatement, MedicationDispense), registered here.

The sender's query of its messages' delivery statuses is ``dmp_bridge.message_status_api``
(``GET /mss/delivery-status?message-id=<...>``), registered here.

Break-glass: header ``X-Break-Glass-Reason: <reason>`` (percent-encoded UTF-8).
Refusals are OperationOutcome with 400, 401, 403, 404 or 422.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge import clinical_api, fhir_appointments, message_status_api, pro_login, service_api
from dmp_bridge.access import DmpRefused, Viewer, audit
from dmp_bridge.api_auth import Caller, authenticate, verify_bearer_first, viewer_of
from dmp_bridge.api_common import (
    SANDBOX,
    base_url,
    fhir_response,
    in_transaction,
    outcomes,
    patient_by_ins,
    self_url,
    viewer_with_stated_reason,
)
from dmp_bridge.cda import read_cda_header
from dmp_bridge.dispensation import dispensation_refusal
from dmp_bridge.documents import (
    deposit_document,
    get_document,
    list_documents_for,
)
from dmp_bridge.errors import XdmError
from dmp_bridge.fhir_documents import (
    FHIR_JSON,
    FhirInputError,
    ProvidedDocument,
    binary_resource,
    document_reference,
    parse_patient_identifier,
    parse_provide_bundle,
    parse_type_token,
    search_bundle,
)
from dmp_bridge.models import DmpDocument
from mss.bounded_json import JsonRefused, loads_bounded
from mss.directory.models import Patient
from mss.directory.store import find_patient_by_ins
from mss.policy.consent import NOT_FOUND, answer_by_document_id
from mss.policy.dmp_metadata import CDA_TYPES, media_type, served_format
from mss.web import DB, attachment_disposition

SEARCH_PARAMETERS = frozenset({"patient.identifier", "status", "type"})
STATUSES = {"current": False, "superseded": True}


async def find(request: web.Request) -> web.StreamResponse:
    """ITI-67: the documents of one patient this professional may see."""
    unknown = set(request.query) - SEARCH_PARAMETERS
    if unknown:
        raise FhirInputError(
            400,
            "not-supported",
            f"unknown search parameter(s) "
            f"{', '.join(sorted(unknown))}; this server knows "
            f"{', '.join(sorted(SEARCH_PARAMETERS))}",
        )
    identifier = request.query.get("patient.identifier")
    if not identifier:
        raise FhirInputError(400, "required", "patient.identifier is required (ITI-67)")
    _oid, ins = parse_patient_identifier(identifier)
    wanted = [s.strip() for s in request.query.get("status", "current").split(",") if s.strip()]
    if not wanted or any(s not in STATUSES for s in wanted):
        raise FhirInputError(400, "invalid", "status must be current and/or superseded")
    types = (
        [parse_type_token(t) for t in request.query["type"].split(",")]
        if "type" in request.query
        else None
    )

    async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
        patient = await patient_by_ins(session, ins)
        viewer = viewer_of(request, caller)
        documents = await list_documents_for(
            session, viewer, patient, include_replaced="superseded" in wanted
        )
        chosen = [
            d
            for d in documents
            if ("superseded" if d.status == "replaced" else "current") in wanted
            and (types is None or any(_of_type(d, system, code) for system, code in types))
        ]
        resources = [
            document_reference(
                d,
                patient,
                base_url(request),
                d.replaces_id if _visible_parent(d, documents) else None,
            )
            for d in chosen
        ]
        return fhir_response(search_bundle(resources, self_url(request)))

    return await in_transaction(request, work)


def _of_type(document: DmpDocument, system: str | None, code: str) -> bool:
    return document.type_code == code and (system is None or document.type_system == system)


def _visible_parent(document: DmpDocument, seen: list[DmpDocument]) -> bool:
    return document.replaces_id is not None and any(d.id == document.replaces_id for d in seen)


def _document_id(raw: str) -> tuple[int, str]:
    ident, pdf, _ = raw.partition("-pdf")
    if not ident.isdigit() or (pdf and _) or len(ident) > 18:
        raise FhirInputError(404, "not-found", f"no document {raw}")
    return int(ident), "pdf" if pdf else "original"


async def _owner(session: AsyncSession, document_id: int) -> Patient:
    document = await session.get(DmpDocument, document_id)
    patient = await session.get(Patient, document.patient_id) if document is not None else None
    if patient is None:
        raise DmpRefused(NOT_FOUND)  # the very answer a hidden document gets
    return patient


async def _by_id(
    request: web.Request, document_id: int, rendition: str = "original"
) -> tuple[Patient, DmpDocument, bytes]:
    """The document named only by its id: every refusal answers like an absent document."""

    async def work(session: AsyncSession, caller: Caller) -> tuple[Patient, DmpDocument, bytes]:
        viewer = viewer_with_stated_reason(request, caller)
        patient = await _owner(session, document_id)
        document, data = await get_document(
            session, viewer, patient, document_id, rendition=rendition
        )
        return patient, document, data

    try:
        return await in_transaction(request, work)
    except DmpRefused as refused:
        raise DmpRefused(answer_by_document_id(refused.decision)) from None


async def read_reference(request: web.Request) -> web.StreamResponse:
    """The DocumentReference of one document."""
    document_id, rendition = _document_id(request.match_info["id"])
    if rendition != "original":
        raise FhirInputError(404, "not-found", f"no DocumentReference {request.match_info['id']}")

    patient, document, _data = await _by_id(request, document_id)
    return fhir_response(document_reference(document, patient, base_url(request)))


async def retrieve(request: web.Request) -> web.StreamResponse:
    """ITI-68: the document's bytes (or its PDF rendering)."""
    binary_id = request.match_info["id"]
    document_id, rendition = _document_id(binary_id)

    _patient_row, document, data = await _by_id(request, document_id, rendition)
    content_type, extension = served_format(
        "application/pdf" if rendition == "pdf" else document.mime_type
    )
    if FHIR_JSON in request.headers.get("Accept", ""):
        return fhir_response(binary_resource(binary_id, content_type, data))
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


async def provide(request: web.Request) -> web.StreamResponse:
    """ITI-65: deposit documents (all or none); a replacement names relatesTo replaces."""
    try:
        body = loads_bounded(await request.read())
    except JsonRefused as refused:
        raise FhirInputError(400, "invalid", refused.sentence) from None
    provided = parse_provide_bundle(body)
    await verify_bearer_first(request)
    try:
        async with request.app[DB].write() as session:
            caller = await authenticate(request, session)
            viewer = viewer_of(request, caller)
            try:
                entries = [await _deposit(session, viewer, item) for item in provided.documents]
            except DmpRefused as exc:
                raise _RolledBack(exc, viewer) from exc
    except _RolledBack as rolled_back:
        await _audit_refusal(request, provided.documents, rolled_back.viewer, rolled_back.refused)
        raise rolled_back.refused from None
    return fhir_response(
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [e for pair in entries for e in pair],
        },
        200,
    )


class _RolledBack(Exception):
    """Rolls the provide transaction back; the refusal is then audited on its own."""

    def __init__(self, refused: DmpRefused, viewer: Viewer) -> None:
        super().__init__(refused.decision.sentence)
        self.refused, self.viewer = refused, viewer


async def _deposit(
    session: AsyncSession, viewer: Viewer, item: ProvidedDocument
) -> list[dict[str, Any]]:
    patient = await patient_by_ins(session, item.patient_ins)
    _check_cda(item)
    draft = item.draft
    draft.author_id_nat, draft.author_name = viewer.id_nat, viewer.name
    draft.author_institution = viewer.institution_name
    draft.author_institution_id = viewer.institution
    document = await deposit_document(session, viewer, patient, draft, item.replaces_id)
    created = {"status": "201 Created", "location": f"DocumentReference/{document.id}"}
    return [
        {"response": created},
        {"response": {"status": "201 Created", "location": f"Binary/{document.id}"}},
    ]


def _check_cda(item: ProvidedDocument) -> None:
    """A CDA deposited for a patient must carry that patient's INS (904 otherwise); an eDISP-MED
    dispensation must list readable items (906)."""
    if media_type(item.draft.mime_type) not in CDA_TYPES:
        return
    try:
        header = read_cda_header(item.draft.content)
    except XdmError as error:
        raise FhirInputError(422, "invalid", f"{error.code}: {error.sentence}") from None
    ins = header.patient.ins
    if ins is not None and ins.matricule.strip().upper() != item.patient_ins.upper():
        raise FhirInputError(
            422,
            "invalid",
            f"904: the CDA is for INS {ins.matricule}, not for the subject {item.patient_ins}",
        )
    unreadable = dispensation_refusal(header, item.draft.content)
    if unreadable is not None:
        raise FhirInputError(422, "invalid", f"{unreadable.code}: {unreadable.sentence}")


async def _audit_refusal(
    request: web.Request, items: list[ProvidedDocument], viewer: Viewer, refused: DmpRefused
) -> None:
    """The deposit was rolled back: record the refusal on its own."""
    async with request.app[DB].write() as session:
        for ins in {item.patient_ins for item in items}:
            patient = await find_patient_by_ins(session, ins)
            if patient is not None:
                await audit(
                    session,
                    "document_access_refused",
                    viewer,
                    patient,
                    attempted="deposit",
                    refusal=refused.decision.reason,
                )


def setup(app: web.Application) -> None:
    """Add the MHD routes; call before the directory's catch-all ``/fhir/{tail}`` route."""
    # A bearer token is a connected service (``dmp_bridge.service_api``), under its scopes.
    app.router.add_get(
        "/fhir/DocumentReference", service_api.by_caller(outcomes(find), service_api.find)
    )
    app.router.add_get(
        "/fhir/DocumentReference/{id}",
        service_api.by_caller(outcomes(read_reference), service_api.read_reference),
    )
    app.router.add_get(
        "/fhir/Binary/{id}", service_api.by_caller(outcomes(retrieve), service_api.retrieve)
    )
    service_api.setup(app)
    app.router.add_post("/fhir", outcomes(provide))
    app.router.add_post("/fhir/", outcomes(provide))
    clinical_api.setup(app)
    fhir_appointments.setup(app)
    pro_login.setup(app)
    message_status_api.setup(app)
