"""What a connected service reads of a patient's space (documents, profile, agenda): through
``mss.policy.services``, audited.

The service acts for the space it was connected from, as the person who connected it
(the patient, or a guardian for a child); the policy narrows that to its scopes. Each
use is an audit event naming the service, on the space's history.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused, Viewer, audit
from dmp_bridge.consent_store import consent_facts
from dmp_bridge.documents import document_facts, find_document
from dmp_bridge.models import CURRENT, REPLACED, DmpDocument
from mss.agenda.models import Appointment
from mss.agenda.sharing import share_facts, shared_appointments
from mss.catalogue.tokens import Bearer
from mss.directory.models import Patient
from mss.policy.agenda import AGENDA_NOT_FOUND
from mss.policy.consent import NOT_FOUND, ViewerKind
from mss.policy.decision import Decision
from mss.policy.services import (
    ServiceAction,
    ServiceFacts,
    decide_service_action,
    service_can_see,
)
from mss.profile import store as profile_store
from mss.profile.models import ProfileItem


def service_viewer(bearer: Bearer) -> Viewer:
    """The audit's actor: the service, by its client id and name."""
    return Viewer(
        ViewerKind.SERVICE, bearer.service.client_id, bearer.service.name, source="service"
    )


async def service_facts(session: AsyncSession, bearer: Bearer) -> ServiceFacts:
    """The granted scopes, and the person the service acts as, as the consent engine sees them."""
    person = bearer.connected_by
    if person.id == bearer.patient.id:
        as_person = Viewer.for_patient(person, source="service")
    else:
        as_person = Viewer.for_guardian(person, source="service")
    return ServiceFacts(bearer.scopes, await as_person.facts(session, bearer.patient))


async def decide_for_service(
    session: AsyncSession,
    bearer: Bearer,
    action: ServiceAction,
    document: DmpDocument | None = None,
) -> Decision:
    """The policy's decision; a refusal is audited (without naming the document) and raised."""
    facts = await service_facts(session, bearer)
    consent = await consent_facts(session, bearer.patient)
    agenda = (
        await share_facts(session, bearer.patient) if action is ServiceAction.READ_AGENDA else None
    )
    decision = decide_service_action(
        facts,
        consent,
        action,
        document_facts(document) if document is not None else None,
        document.type_code if document is not None else "",
        agenda,
    )
    if not decision.allowed:
        await audit(
            session,
            "service_access_refused",
            service_viewer(bearer),
            bearer.patient,
            attempted=action.value,
            refusal=decision.reason,
        )
        raise DmpRefused(decision)
    return decision


async def list_documents_for_service(
    session: AsyncSession, bearer: Bearer, *, include_replaced: bool = False
) -> list[DmpDocument]:
    """The documents the service may see in its space, newest first."""
    await decide_for_service(session, bearer, ServiceAction.LIST_DOCUMENTS)
    patient: Patient = bearer.patient
    statuses = (CURRENT, REPLACED) if include_replaced else (CURRENT,)
    rows = (
        await session.scalars(
            select(DmpDocument)
            .where(DmpDocument.patient_id == patient.id, DmpDocument.status.in_(statuses))
            .order_by(DmpDocument.creation_time.desc(), DmpDocument.id.desc())
        )
    ).all()
    facts = await service_facts(session, bearer)
    consent = await consent_facts(session, patient)
    visible = [d for d in rows if service_can_see(facts, consent, document_facts(d), d.type_code)]
    await audit(
        session,
        "service_document_list",
        service_viewer(bearer),
        patient,
        count=len(visible),
    )
    return visible


async def get_document_for_service(
    session: AsyncSession, bearer: Bearer, document_id: int, *, rendition: str = "original"
) -> tuple[DmpDocument, bytes]:
    """One document of the service's space and its bytes; 404 when outside what it may see."""
    document = await find_document(session, bearer.patient, document_id)
    if document is None:
        await decide_for_service(session, bearer, ServiceAction.LIST_DOCUMENTS)
        raise DmpRefused(NOT_FOUND)
    await decide_for_service(session, bearer, ServiceAction.READ_DOCUMENT, document)
    column = DmpDocument.pdf if rendition == "pdf" else DmpDocument.content
    data = (await session.execute(select(column).where(DmpDocument.id == document.id))).scalar_one()
    if data is None:
        raise DmpRefused(NOT_FOUND)
    await audit(
        session,
        "service_document_read",
        service_viewer(bearer),
        bearer.patient,
        document,
        rendition=rendition,
        title=document.title,
    )
    return document, bytes(data)


async def read_profile_for_service(
    session: AsyncSession, bearer: Bearer, category: str
) -> list[ProfileItem]:
    """The profile's items of ``category`` (allergy, treatment), under ``profile:read``."""
    await decide_for_service(session, bearer, ServiceAction.READ_PROFILE)
    items = await profile_store.items_of_category(session, bearer.patient.id, category)
    await audit(
        session,
        "service_profile_read",
        service_viewer(bearer),
        bearer.patient,
        category=category,
        count=len(items),
    )
    return items


async def read_profile_item_for_service(
    session: AsyncSession, bearer: Bearer, item_id: int, category: str
) -> ProfileItem:
    """One item of the space's profile; 404 when absent, of another category or another space."""
    await decide_for_service(session, bearer, ServiceAction.READ_PROFILE)
    item = await profile_store.profile_item(session, bearer.patient.id, item_id)
    if item is None or item.category != category:
        raise DmpRefused(NOT_FOUND)
    await audit(
        session,
        "service_profile_item_read",
        service_viewer(bearer),
        bearer.patient,
        category=category,
        item_id=item.id,
    )
    return item


async def read_agenda_for_service(
    session: AsyncSession, bearer: Bearer, *, form: str
) -> list[Appointment]:
    """Every appointment of the space's agenda, soonest first, under ``agenda:read``."""
    await decide_for_service(session, bearer, ServiceAction.READ_AGENDA)
    appointments = await shared_appointments(session, bearer.patient.id)
    await audit(
        session,
        "service_agenda_read",
        service_viewer(bearer),
        bearer.patient,
        form=form,
        count=len(appointments),
    )
    return appointments


async def read_appointment_for_service(
    session: AsyncSession, bearer: Bearer, appointment_id: int
) -> Appointment:
    """One appointment of the space's agenda; one of another space answers like an absent one."""
    await decide_for_service(session, bearer, ServiceAction.READ_AGENDA)
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != bearer.patient.id:
        raise DmpRefused(AGENDA_NOT_FOUND)
    await audit(
        session,
        "service_agenda_read",
        service_viewer(bearer),
        bearer.patient,
        form="fhir",
        appointment=appointment.id,
    )
    return appointment
