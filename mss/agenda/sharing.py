"""The agenda shared with professionals: the patient's choice, and the appointments they add.

The choice (``mss.policy.agenda.AgendaSharing``) is stored per patient space; no row means
shared with nobody. Who may change it, and which professional may read or add to the agenda,
is decided in ``mss.policy.agenda``; the document API (``dmp_bridge.fhir_appointments``)
loads the facts, asks, and audits. Every write here joins the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.agenda.convocations import AGENDA_LINK
from mss.agenda.models import AgendaSharedProfessional, AgendaSharingChoice, Appointment
from mss.agenda.reminders import schedule_reminders
from mss.agenda.store import MAX_TEXT
from mss.config import Settings
from mss.directory.models import Patient, PatientState
from mss.errors import InvalidInput
from mss.notify import notify_patient
from mss.patients import Actor, audit
from mss.policy.agenda import AgendaShareFacts, AgendaSharing

PROFESSIONAL = "professional"


async def share_facts(session: AsyncSession, patient: Patient) -> AgendaShareFacts:
    """The patient's sharing choice as the policy reads it."""
    row = await session.get(AgendaSharingChoice, patient.id)
    sharing = AgendaSharing(row.sharing) if row is not None else AgendaSharing.NONE
    return AgendaShareFacts(
        sharing=sharing,
        chosen=frozenset(await chosen_professionals(session, patient.id)),
        account_active=patient.state is PatientState.ACTIVE,
    )


async def chosen_professionals(session: AsyncSession, patient_id: int) -> list[str]:
    """The idNat of the professionals chosen by name (kept while another choice is in force)."""
    return list(
        (
            await session.scalars(
                select(AgendaSharedProfessional.id_nat)
                .where(AgendaSharedProfessional.patient_id == patient_id)
                .order_by(AgendaSharedProfessional.id_nat)
            )
        ).all()
    )


async def set_sharing(
    session: AsyncSession,
    patient: Patient,
    sharing: AgendaSharing,
    chosen: Iterable[str],
    *,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Record the choice (the caller asked ``decide_agenda_sharing_change``), audited."""
    wanted = sorted(set(chosen))
    if sharing is AgendaSharing.CHOSEN and not wanted:
        raise InvalidInput("choisissez au moins un professionnel")
    row = await session.get(AgendaSharingChoice, patient.id)
    if row is None:
        row = AgendaSharingChoice(patient_id=patient.id)
        session.add(row)
    row.sharing, row.updated_at = sharing.value, now
    await session.execute(
        delete(AgendaSharedProfessional).where(AgendaSharedProfessional.patient_id == patient.id)
    )
    session.add_all(
        AgendaSharedProfessional(patient_id=patient.id, id_nat=id_nat, chosen_at=now)
        for id_nat in wanted
    )
    await session.flush()
    audit(session, "agenda.sharing_changed", actor, patient, sharing=sharing.value, id_nats=wanted)


async def shared_appointments(session: AsyncSession, patient_id: int) -> list[Appointment]:
    """Every appointment of the agenda, soonest first (what a professional it is shared with
    reads)."""
    return list(
        (
            await session.scalars(
                select(Appointment)
                .where(Appointment.patient_id == patient_id)
                .order_by(Appointment.starts_at, Appointment.id)
            )
        ).all()
    )


@dataclass(frozen=True)
class ProfessionalAppointment:
    """What a professional asks to add: already read and checked by the API."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    summary: str
    location: str = ""
    description: str = ""


def _bounded(value: str, what: str) -> str:
    text = " ".join(value.split())
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what} is longer than {MAX_TEXT} characters")
    return text


async def add_professional_appointment(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    wanted: ProfessionalAppointment,
    *,
    author_id_nat: str,
    author_name: str,
    author_address: str,
    now: dt.datetime,
) -> Appointment:
    """An appointment a professional the agenda is shared with adds, marked with its author; the
    patient is told (with its reminders, as for a convocation)."""
    appointment = Appointment(
        patient_id=patient.id,
        uid=f"{uuid.uuid4()}@{settings.domain}",
        origin=PROFESSIONAL,
        sequence=0,
        status="confirmed",
        response="needs-action",
        starts_at=wanted.starts_at,
        ends_at=wanted.ends_at,
        summary=_bounded(wanted.summary, "description"),
        location=_bounded(wanted.location, "location"),
        description=wanted.description[:2000],
        organizer=author_address,
        organizer_name=author_name,
        author_id_nat=author_id_nat,
        author_name=author_name,
        created_at=now,
        updated_at=now,
        reminders_sent=[],
    )
    session.add(appointment)
    await session.flush()
    schedule_reminders(
        session, settings, appointment.id, appointment.sequence, appointment.starts_at, now=now
    )
    notify_patient(session, patient, "appointment", AGENDA_LINK)  # a change in the agenda
    return appointment
