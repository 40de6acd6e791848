"""The patient's shared agenda in the professional document API: FHIR Appointment and an
iCalendar feed.

- ``GET /fhir/Appointment?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|<INS>`` (search)
- ``GET /fhir/Appointment/<id>`` (read)
- ``POST /fhir/Appointment`` (a new appointment, marked with its author; 201 + Location)
- ``GET /agenda/<INS>.ics`` (RFC 5545 feed, METHOD:PUBLISH, for a calendar application)

The caller authenticates as for documents (``dmp_bridge.api_auth``). Whether they may read
or add is ``mss.policy.agenda.decide_agenda_access``: the record's authorisation (as the
DMP's) and the patient's sharing choice (``mss.agenda.sharing``). Every read, write and
refusal is an audit event on the patient's history. An appointment named by id, in an
agenda closed to the caller, answers exactly like an absent one. A connected service with
``agenda:read`` reads its space's agenda on the same GET routes (``dmp_bridge.service_api``).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge import service_api
from dmp_bridge.access import DmpRefused, Viewer, audit
from dmp_bridge.api_auth import Caller, viewer_of
from dmp_bridge.api_common import (
    base_url,
    fhir_response,
    in_transaction,
    outcomes,
    searched_ins,
    self_url,
)
from dmp_bridge.consent_store import consent_facts
from dmp_bridge.fhir_appointment_resources import (
    appointment_resource,
    calendar_response,
    parse_new_appointment,
)
from dmp_bridge.fhir_documents import FhirInputError, search_bundle
from mss.agenda.models import Appointment
from mss.agenda.sharing import add_professional_appointment, share_facts, shared_appointments
from mss.bounded_json import JsonRefused, loads_bounded
from mss.db import utcnow
from mss.directory.models import Patient
from mss.directory.store import find_patient_by_ins, personal_mailbox
from mss.policy.agenda import (
    AGENDA_NOT_FOUND,
    NO_AGENDA,
    AgendaAccess,
    decide_agenda_access,
    decide_professional_appointment,
)
from mss.web import SETTINGS


async def _patient(session: AsyncSession, ins: str) -> Patient:
    patient = await find_patient_by_ins(session, ins)
    if patient is None:
        raise DmpRefused(NO_AGENDA)
    return patient


async def check_agenda_access(
    session: AsyncSession, viewer: Viewer, patient: Patient, access: AgendaAccess
) -> None:
    """Ask the policy; a refusal is audited (in the request's transaction) and raised."""
    decision = decide_agenda_access(
        await viewer.facts(session, patient),
        await consent_facts(session, patient),
        await share_facts(session, patient),
        access,
    )
    if not decision.allowed:
        await audit(
            session,
            "agenda.shared_access_refused",
            viewer,
            patient,
            attempted=access.value,
            refusal=decision.reason,
        )
        raise DmpRefused(decision)


async def find(request: web.Request) -> web.StreamResponse:
    """The appointments of one patient whose agenda is shared with this professional."""
    ins = searched_ins(request)

    async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
        viewer = viewer_of(request, caller)
        patient = await _patient(session, ins)
        await check_agenda_access(session, viewer, patient, AgendaAccess.READ)
        appointments = await shared_appointments(session, patient.id)
        await audit(
            session, "agenda.shared_read", viewer, patient, form="fhir", count=len(appointments)
        )
        resources = [appointment_resource(a, patient) for a in appointments]
        return fhir_response(search_bundle(resources, self_url(request)))

    return await in_transaction(request, work)


def _appointment_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise FhirInputError(404, "not-found", f"no Appointment {raw}")
    return int(raw)


async def read(request: web.Request) -> web.StreamResponse:
    """One appointment, named by its id: every refusal answers like an absent appointment."""
    appointment_id = _appointment_id(request.match_info["id"])

    async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
        viewer = viewer_of(request, caller)
        appointment = await session.get(Appointment, appointment_id)
        patient = (
            await session.get(Patient, appointment.patient_id) if appointment is not None else None
        )
        if appointment is None or patient is None:
            raise DmpRefused(AGENDA_NOT_FOUND)
        await check_agenda_access(session, viewer, patient, AgendaAccess.READ)
        await audit(
            session, "agenda.shared_read", viewer, patient, form="fhir", appointment=appointment.id
        )
        return fhir_response(appointment_resource(appointment, patient))

    try:
        return await in_transaction(request, work)
    except DmpRefused:
        raise DmpRefused(AGENDA_NOT_FOUND) from None


async def _author_address(session: AsyncSession, caller: Caller) -> str:
    mailbox = await personal_mailbox(session, caller.professional.id)
    return mailbox.address if mailbox is not None else ""


async def create(request: web.Request) -> web.StreamResponse:
    """A professional the agenda is shared with adds an appointment; it is marked as theirs."""
    try:
        body = loads_bounded(await request.read())
    except JsonRefused as refused:
        raise FhirInputError(400, "invalid", refused.sentence) from None
    new = parse_new_appointment(body)
    wanted, now = new.wanted, utcnow()

    async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
        viewer = viewer_of(request, caller)
        patient = await _patient(session, new.patient_ins)
        await check_agenda_access(session, viewer, patient, AgendaAccess.WRITE)
        times = decide_professional_appointment(wanted.starts_at, wanted.ends_at, now)
        if not times.allowed:
            raise FhirInputError(422, "invalid", f"{times.sentence} / {times.sentence_fr}")
        appointment = await add_professional_appointment(
            session,
            request.app[SETTINGS],
            patient,
            wanted,
            author_id_nat=caller.professional.id_nat,
            author_name=caller.professional.display_name,
            author_address=await _author_address(session, caller),
            now=now,
        )
        await audit(
            session,
            "agenda.appointment_added_by_professional",
            viewer,
            patient,
            appointment=appointment.id,
            summary=appointment.summary,
            starts_at=appointment.starts_at.isoformat(),
        )
        response = fhir_response(appointment_resource(appointment, patient), 201)
        response.headers["Location"] = f"{base_url(request)}/fhir/Appointment/{appointment.id}"
        return response

    return await in_transaction(request, work)


async def feed(request: web.Request) -> web.StreamResponse:
    """The agenda as an iCalendar feed, with the same access as the FHIR search."""
    ins = request.match_info["ins"].strip().upper()

    async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
        viewer = viewer_of(request, caller)
        patient = await _patient(session, ins)
        await check_agenda_access(session, viewer, patient, AgendaAccess.READ)
        appointments = await shared_appointments(session, patient.id)
        await audit(
            session, "agenda.shared_read", viewer, patient, form="ics", count=len(appointments)
        )
        return calendar_response(patient, appointments)

    return await in_transaction(request, work)


def setup(app: web.Application) -> None:
    """Add the Appointment and feed routes; call before the directory's ``/fhir/{tail}``."""
    # A bearer token of the catalogue is a connected service (``agenda:read``).
    app.router.add_get(
        "/fhir/Appointment", service_api.by_caller(outcomes(find), service_api.agenda_find)
    )
    app.router.add_post("/fhir/Appointment", outcomes(create))
    app.router.add_get(
        "/fhir/Appointment/{id}", service_api.by_caller(outcomes(read), service_api.agenda_read)
    )
    app.router.add_get(
        r"/agenda/{ins:[0-9A-Za-z]{1,20}}.ics",
        service_api.by_caller(outcomes(feed), service_api.agenda_feed),
    )
