"""The patient's consent choices: load them as policy facts, change them (audited).

Changes go through ``decide_consent_change`` (the patient or a guardian,
never a professional) and leave a ``consent_changed`` event on the
patient's history.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused, Viewer, audit
from dmp_bridge.models import DmpConsent, DmpProfessionalConsent
from mss.db import utcnow
from mss.directory.identifiers import normalise_id_nat
from mss.directory.models import Patient, PatientState, Professional
from mss.policy.consent import ConsentFacts, decide_consent_change

AUTHORISED = "authorised"
BLOCKED = "blocked"


@dataclass(frozen=True)
class ConsentChoices:
    """The patient's choices as stored: the professionals authorised or blocked, the médecin
    traitant, the oppositions."""

    states: dict[str, str]  # idNat -> AUTHORISED or BLOCKED
    treating_id_nat: str | None
    break_glass_opposed: bool
    dmp_opposed: bool


async def consent_record(session: AsyncSession, patient: Patient) -> DmpConsent | None:
    """The patient's record-wide choices (None until the first change)."""
    return await session.get(DmpConsent, patient.id)


async def consent_choices(session: AsyncSession, patient: Patient) -> ConsentChoices:
    """Every choice of the patient (three statements at most: the record-wide row, the
    professionals' states, the médecin traitant's idNat)."""
    row = await consent_record(session, patient)
    states = await session.execute(
        select(DmpProfessionalConsent.id_nat, DmpProfessionalConsent.state).where(
            DmpProfessionalConsent.patient_id == patient.id
        )
    )
    treating = None
    if patient.treating_professional_id is not None:
        doctor = await session.get(Professional, patient.treating_professional_id)
        treating = doctor.id_nat if doctor is not None else None
    return ConsentChoices(
        {id_nat: state for id_nat, state in states},
        treating,
        row is not None and row.break_glass_opposed,
        row is not None and row.dmp_opposed,
    )


async def professional_consent_state(
    session: AsyncSession, patient: Patient, id_nat: str
) -> str | None:
    """AUTHORISED or BLOCKED when the patient chose so for this idNat (as stored), else None."""
    return (
        await session.execute(
            select(DmpProfessionalConsent.state).where(
                DmpProfessionalConsent.patient_id == patient.id,
                DmpProfessionalConsent.id_nat == id_nat,
            )
        )
    ).scalar_one_or_none()


async def consent_facts(session: AsyncSession, patient: Patient) -> ConsentFacts:
    """What the consent engine needs about ``patient``'s record."""
    choices = await consent_choices(session, patient)
    return ConsentFacts(
        record_open=patient.state is PatientState.ACTIVE and not choices.dmp_opposed,
        authorised=frozenset(i for i, s in choices.states.items() if s == AUTHORISED),
        blocked=frozenset(i for i, s in choices.states.items() if s == BLOCKED),
        treating_id_nat=choices.treating_id_nat,
        break_glass_opposed=choices.break_glass_opposed,
    )


async def _check(session: AsyncSession, viewer: Viewer, patient: Patient) -> None:
    decision = decide_consent_change(await viewer.facts(session, patient))
    if not decision.allowed:
        raise DmpRefused(decision)


async def _record(session: AsyncSession, patient: Patient) -> DmpConsent:
    row = await consent_record(session, patient)
    if row is None:
        row = DmpConsent(patient_id=patient.id, break_glass_opposed=False, dmp_opposed=False)
        session.add(row)
    row.updated_at = utcnow()
    return row


async def _set_state(
    session: AsyncSession, patient: Patient, id_nat: str, state: str | None
) -> None:
    row = (
        await session.scalars(
            select(DmpProfessionalConsent).where(
                DmpProfessionalConsent.patient_id == patient.id,
                DmpProfessionalConsent.id_nat == id_nat,
            )
        )
    ).first()
    if state is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(DmpProfessionalConsent(patient_id=patient.id, id_nat=id_nat, state=state))
    else:
        row.state, row.changed_at = state, utcnow()
    await session.flush()


async def set_authorisation(
    session: AsyncSession, viewer: Viewer, patient: Patient, id_nat: str, authorised: bool = True
) -> None:
    """Authorise a professional to read the record, or withdraw the authorisation."""
    await _check(session, viewer, patient)
    id_nat = normalise_id_nat(id_nat, check_key=False)
    current = await consent_facts(session, patient)
    if authorised:
        await _set_state(session, patient, id_nat, AUTHORISED)
    elif id_nat in current.authorised:
        await _set_state(session, patient, id_nat, None)
    await audit(
        session,
        "consent_changed",
        viewer,
        patient,
        change="authorised" if authorised else "authorisation_withdrawn",
        id_nat=id_nat,
    )


async def set_block(
    session: AsyncSession, viewer: Viewer, patient: Patient, id_nat: str, blocked: bool = True
) -> None:
    """Block a professional (no reading, no deposit; they stop being médecin traitant), or
    unblock."""
    await _check(session, viewer, patient)
    id_nat = normalise_id_nat(id_nat, check_key=False)
    if blocked:
        await _set_state(session, patient, id_nat, BLOCKED)
        if patient.treating_professional_id is not None:
            doctor = await session.get(Professional, patient.treating_professional_id)
            if doctor is not None and doctor.id_nat == id_nat:
                patient.treating_professional_id = None
    elif id_nat in (await consent_facts(session, patient)).blocked:
        await _set_state(session, patient, id_nat, None)
    await audit(
        session,
        "consent_changed",
        viewer,
        patient,
        change="blocked" if blocked else "unblocked",
        id_nat=id_nat,
    )


async def set_treating_doctor(
    session: AsyncSession, viewer: Viewer, patient: Patient, professional: Professional | None
) -> None:
    """Name the médecin traitant (unblocking them), or remove the designation with None."""
    await _check(session, viewer, patient)
    patient.treating_professional_id = professional.id if professional is not None else None
    if (
        professional is not None
        and professional.id_nat in (await consent_facts(session, patient)).blocked
    ):
        await _set_state(session, patient, professional.id_nat, None)
    await session.flush()
    await audit(
        session,
        "consent_changed",
        viewer,
        patient,
        change="treating_doctor",
        id_nat=professional.id_nat if professional is not None else None,
    )


async def set_break_glass_opposition(
    session: AsyncSession, viewer: Viewer, patient: Patient, opposed: bool
) -> None:
    """Oppose (or stop opposing) emergency access to the record in advance."""
    await _check(session, viewer, patient)
    (await _record(session, patient)).break_glass_opposed = opposed
    await session.flush()
    await audit(
        session,
        "consent_changed",
        viewer,
        patient,
        change="break_glass_opposed" if opposed else "break_glass_allowed",
    )


async def set_dmp_opposition(
    session: AsyncSession, viewer: Viewer, patient: Patient, opposed: bool
) -> None:
    """Oppose the record itself: nothing is filed and nobody reads it while the opposition lasts."""
    await _check(session, viewer, patient)
    (await _record(session, patient)).dmp_opposed = opposed
    await session.flush()
    await audit(
        session,
        "consent_changed",
        viewer,
        patient,
        change="dmp_opposed" if opposed else "dmp_allowed",
    )
