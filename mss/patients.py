"""A patient account's life: activation code, opposition, activation, deactivation, closing.

::

    CREATED ──code issued──▶ OPPOSITION_WINDOW ──code + password──▶ ACTIVE ◀──▶ DEACTIVATED
                                   │   └──deadline passed (job)──▶ ACTIVE          │
                                   └──code, before the deadline──▶ OPPOSED         ▼
                                                        ACTIVE / DEACTIVATED ──▶ CLOSED
    OPPOSED ──opposition withdrawn (confirmed)──▶ ACTIVE
    CLOSED ──reopened (confirmed), within the closed account's retention──▶ ACTIVE

Without the letter, a proof of identity (INS + birth date + a code sent to the phone or
e-mail on file) activates, withdraws an opposition or reopens, with a new password.

The rules (which state allows which transition, what a new password needs)
are pure decisions in ``mss.policy.lifecycle``. Each transition here asks
them, then either changes the patient and adds an audit event to the
caller's transaction, or raises ``LifecycleRefused`` carrying the refusal
(French sentence for the portal, English for the CLI and logs). Activation
codes are stored only as argon2 hashes and are single-use.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mss.audit import record, record_committed
from mss.config import Settings
from mss.crypto.passwords import hash_secret, verify_secret
from mss.db import Database, utcnow
from mss.directory.models import Guardianship, Patient, PatientState
from mss.directory.store import find_patient_by_email, find_patient_by_ins
from mss.errors import HubError
from mss.jobs import JobContext, JobRunner, enqueue
from mss.notify import notify_patient, portal_link, send_email
from mss.policy.decision import Decision
from mss.policy.lifecycle import (
    WRONG_ACTIVATION_CODE,
    ProofOutcome,
    decide_activation,
    decide_auto_activation,
    decide_closing,
    decide_code_issue,
    decide_code_reissue,
    decide_deactivation,
    decide_new_password,
    decide_opposition,
    decide_opposition_withdrawal,
    decide_reactivation,
    decide_reopening,
    french_date,
    proof_outcome,
)
from mss.policy.lifecycle import needs_activation_code as _needs_code

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed from paper
CODE_LENGTH = 12
PASSWORD_RULES = (
    "Au moins 12 caractères, avec des lettres et au moins un chiffre ou un symbole. "
    "Une phrase facile à retenir convient très bien, par exemple "
    "« mon chat dort 3 fois par jour »."
)
AUTO_ACTIVATE = "patients.auto_activate"
log = logging.getLogger("mss.patients")


class LifecycleRefused(HubError):
    """A transition that the account's state (or the given code) does not allow.

    ``decision`` is the policy's refusal; the sentence (``str()``) is its French one.
    """

    exit_code = 2

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.sentence_fr)
        self.decision = decision


def _apply(decision: Decision) -> None:
    """Raise the refusal, or return when the policy allows the transition."""
    if not decision:
        raise LifecycleRefused(decision)


class WrongActivationCode(LifecycleRefused):
    """The code does not match (or no code is pending): counts as a failed attempt."""

    def __init__(self) -> None:
        super().__init__(WRONG_ACTIVATION_CODE)


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit log: a patient in their own space, a guardian, or the hub."""

    kind: str  # patient, guardian, system
    ident: str  # the INS of the person, or "mss" for the hub
    name: str
    source: str = ""

    @classmethod
    def person(cls, person: Patient, space: Patient, source: str = "") -> Actor:
        """``person`` acting in ``space`` (their own, or a minor's they hold)."""
        kind = "patient" if person.id == space.id else "guardian"
        return cls(kind, person.ins, person.display_name, source)


SYSTEM = Actor("system", "mss", "Le service de messagerie")


def audit(
    session: AsyncSession, action: str, actor: Actor, patient: Patient, **detail: Any
) -> None:
    """Record ``action`` in ``patient``'s history; a guardian's act names the minor in
    on_behalf_of."""
    record(
        session,
        action,
        actor_kind=actor.kind,
        actor=actor.ident,
        patient_id=patient.id,
        source=actor.source,
        on_behalf_of=patient.ins if actor.kind == "guardian" else None,
        actor_name=actor.name,
        **detail,
    )


async def audit_committed(
    db: Database, action: str, actor: Actor, patient: Patient, **detail: Any
) -> None:
    """``audit`` through the audit writer (``mss.audit.record_committed``): once committed."""
    await record_committed(
        db,
        action,
        actor_kind=actor.kind,
        actor=actor.ident,
        patient_id=patient.id,
        source=actor.source,
        on_behalf_of=patient.ins if actor.kind == "guardian" else None,
        actor_name=actor.name,
        **detail,
    )


# -- secrets -----------------------------------------------------------------------------


def new_activation_code() -> str:
    """Twelve characters from an unambiguous alphabet, shown as ``ABCD-EFGH-JKLM``."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


async def rehash_patient_password(session: AsyncSession, patient: Patient, password: str) -> None:
    """After a login whose hash has older parameters: store one of today's, unless it changed
    meanwhile."""
    await session.execute(
        update(Patient)
        .where(Patient.id == patient.id, Patient.password_hash == patient.password_hash)
        .values(password_hash=await hash_secret(password))
    )


def normalise_activation_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


# -- look-ups ----------------------------------------------------------------------------


async def find_patient_by_identifier(session: AsyncSession, identifier: str) -> Patient | None:
    """The patient whose INS matricule or personal e-mail this is (through the directory store)."""
    text = identifier.strip()
    if "@" in text:
        return await find_patient_by_email(session, text)
    return await find_patient_by_ins(session, text)


async def minors_of(session: AsyncSession, guardian: Patient) -> list[Patient]:
    """The minors this patient holds as a legal guardian, by name."""
    query = (
        select(Patient)
        .join(Guardianship, Guardianship.minor_id == Patient.id)
        .where(Guardianship.guardian_id == guardian.id)
        .order_by(Patient.given_names, Patient.family_name)
    )
    return list((await session.scalars(query)).all())


# Built once: an alias made per call rebuilds its column proxies and misses the statement cache.
_MINOR = aliased(Patient, name="minor")


def with_patient_and_minors(
    entity: type[Any], patient_id: SQLColumnExpression[int | None]
) -> Select[Any, Patient | None, Patient | None]:
    """``select(entity, patient, minor)``: each row of another package's ``entity`` with the
    patient its ``patient_id`` column names and each minor that patient holds, by name as
    ``minors_of`` (one row per minor; patient and minor None where there is none).

    The caller adds its own conditions on ``entity`` and builds the statement once, so reading a
    row, its patient and the minors stays one statement (the portal's session on every page).
    """
    return (
        select(entity, Patient, _MINOR)
        .outerjoin(Patient, Patient.id == patient_id)
        .outerjoin(Guardianship, Guardianship.guardian_id == Patient.id)
        .outerjoin(_MINOR, _MINOR.id == Guardianship.minor_id)
        .order_by(_MINOR.given_names, _MINOR.family_name)
    )


async def held_minors(session: AsyncSession) -> list[tuple[Patient, list[Patient]]]:
    """Every patient some guardian holds, with their guardians (two statements)."""
    guardians: dict[int, list[int]] = {}
    for minor_id, guardian_id in await session.execute(
        select(Guardianship.minor_id, Guardianship.guardian_id).order_by(Guardianship.id)
    ):
        guardians.setdefault(minor_id, []).append(guardian_id)
    if not guardians:
        return []
    ids = {*guardians, *(g for held in guardians.values() for g in held)}
    people = {p.id: p for p in (await session.scalars(select(Patient).where(Patient.id.in_(ids))))}
    return [
        (people[minor], [people[g] for g in held if g in people])
        for minor, held in sorted(guardians.items())
        if minor in people
    ]


async def guardians_of(session: AsyncSession, minor_id: int) -> list[Patient]:
    """The patients holding this minor as legal guardians."""
    query = (
        select(Patient)
        .join(Guardianship, Guardianship.guardian_id == Patient.id)
        .where(Guardianship.minor_id == minor_id)
        .order_by(Guardianship.id)
    )
    return list((await session.scalars(query)).all())


async def end_guardianships(session: AsyncSession, minor_id: int) -> None:
    """Every guardian of this minor loses the right to act for them (the caller audits)."""
    await session.execute(delete(Guardianship).where(Guardianship.minor_id == minor_id))


async def holds_minor(session: AsyncSession, guardian_id: int, minor_id: int) -> bool:
    query = select(Guardianship.id).where(
        Guardianship.guardian_id == guardian_id, Guardianship.minor_id == minor_id
    )
    return (await session.scalars(query)).first() is not None


# -- activation letters ------------------------------------------------------------------


def needs_activation_code(patient: Patient) -> bool:
    """A new account that has neither a code nor a password yet."""
    return _needs_code(
        patient.state, patient.activation_code_hash is not None, patient.password_hash is not None
    )


async def issue_activation_code(
    session: AsyncSession, settings: Settings, patient: Patient, now: dt.datetime | None = None
) -> str:
    """Give the patient a fresh code (returned in clear once) and open the opposition window."""
    code = new_activation_code()
    _give_code(session, settings, patient, await hash_secret(normalise_activation_code(code)), now)
    return code


def _give_code(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    code_hash: str,
    now: dt.datetime | None,
) -> None:
    now = now or utcnow()
    _apply(
        decide_code_issue(
            patient.state,
            patient.activation_code_hash is not None,
            patient.password_hash is not None,
            patient.ins,
        )
    )
    patient.activation_code_hash = code_hash
    if patient.state is PatientState.CREATED:
        patient.state, patient.state_changed_at = PatientState.OPPOSITION_WINDOW, now
    if patient.opposition_deadline is None:
        patient.opposition_deadline = now + dt.timedelta(
            days=settings.portal.opposition_window_days
        )
    schedule_auto_activation(session, patient)
    audit(
        session,
        "activation_code_issued",
        SYSTEM,
        patient,
        deadline=patient.opposition_deadline.isoformat(),
    )


LetterWriter = Callable[[Patient, str], Awaitable[Any]]

_NEEDS_CODE = (
    Patient.state.in_((PatientState.CREATED, PatientState.OPPOSITION_WINDOW)),
    Patient.activation_code_hash.is_(None),
    Patient.password_hash.is_(None),
)


async def issue_letters(
    db: Database, settings: Settings, write_letter: LetterWriter, now: dt.datetime | None = None
) -> list[Patient]:
    """Issue a code to every new patient without one and write their letter.

    The argon2 hashes are computed before the write transaction (it would
    otherwise hold SQLite's single writer); ``write_letter`` runs inside it,
    so a code is stored only if its letter was written.
    """
    async with db.read() as session:
        ids = list((await session.scalars(select(Patient.id).where(*_NEEDS_CODE))).all())
    codes = [new_activation_code() for _ in ids]
    hashes = [await hash_secret(normalise_activation_code(code)) for code in codes]
    issued: list[Patient] = []
    async with db.write() as session:
        for patient_id, code, code_hash in zip(ids, codes, hashes, strict=True):
            patient = (
                await session.scalars(select(Patient).where(Patient.id == patient_id, *_NEEDS_CODE))
            ).first()
            if patient is None:  # activated or given a code meanwhile
                continue
            _give_code(session, settings, patient, code_hash, now)
            await write_letter(patient, code)
            await email_activation_code(session, settings, patient, code)
            issued.append(patient)
    return issued


def activation_code_email(settings: Settings, patient: Patient, code: str) -> tuple[str, str]:
    """Subject and body of the e-mail that carries the code, as the letter does (no medical
    content)."""
    deadline = patient.opposition_deadline
    opposing = ""
    if patient.state is PatientState.OPPOSITION_WINDOW and deadline is not None:
        until = french_date(deadline.date())
        opposing = (
            f"Si vous ne souhaitez pas de ce compte, vous pouvez vous y opposer jusqu'au {until} "
            f"avec le même code, sur {portal_link(settings, '/opposition')}. Sans opposition de "
            f"votre part, votre compte sera ouvert le {until}.\n\n"
        )
    body = (
        "Madame, Monsieur,\n\n"
        "Un compte de messagerie sécurisée de santé est à votre nom. Vos médecins, pharmaciens "
        "et établissements de santé pourront vous y écrire en toute confidentialité.\n\n"
        f"Votre numéro INS : {patient.ins}\n"
        f"Votre code d'activation : {code}\n\n"
        f"Pour activer votre compte, rendez-vous sur {portal_link(settings, '/activation')} "
        "puis saisissez votre numéro INS, ce code et le mot de passe de votre choix.\n\n"
        f"{opposing}"
        "Ce code est personnel : ne le communiquez à personne. Aucun professionnel ni aucun "
        "conseiller ne vous le demandera jamais.\n"
    )
    return "Votre code d'activation de messagerie santé", body


async def email_activation_code(
    session: AsyncSession, settings: Settings, patient: Patient, code: str
) -> bool:
    """Send the code to the personal e-mail on file as well as the letter (the notifications'
    mail path, ``mss.notify.send_email``); False when none is on file or the mail could not go
    (the letter is the code's first way: the run goes on without the e-mail)."""
    if not patient.email:
        return False
    subject, body = activation_code_email(settings, patient, code)
    try:
        await send_email(settings, patient.email, subject, body)
    except Exception as exc:  # noqa: BLE001 - the letter carries the code all the same
        log.warning("activation code of patient %s not e-mailed: %s", patient.id, exc)
        return False
    audit(session, "activation_code_emailed", SYSTEM, patient)
    return True


def schedule_auto_activation(session: AsyncSession, patient: Patient) -> None:
    """A job at the end of the opposition window (once per patient)."""
    if patient.opposition_deadline is not None:
        enqueue(
            session,
            AUTO_ACTIVATE,
            {"patient_id": patient.id},
            run_after=patient.opposition_deadline,
            dedupe_key=f"{AUTO_ACTIVATE}:{patient.id}",
        )


# -- transitions -------------------------------------------------------------------------


async def activate_with_code(
    session: AsyncSession,
    patient: Patient,
    code: str,
    password: str,
    actor: Actor,
    now: dt.datetime | None = None,
) -> None:
    """Open the account (or, after an automatic activation, set its first password) with the
    letter's code."""
    now = now or utcnow()
    if not await verify_secret(patient.activation_code_hash, normalise_activation_code(code)):
        raise WrongActivationCode()
    _apply(decide_activation(patient.state, bool(patient.password_hash)))
    _apply(decide_new_password(password, patient.ins or ""))
    patient.password_hash = await hash_secret(password)
    patient.activation_code_hash = None
    if patient.state is not PatientState.ACTIVE:
        patient.state, patient.state_changed_at, patient.activated_at = (
            PatientState.ACTIVE,
            now,
            now,
        )
    audit(session, "account_activated", actor, patient)


async def oppose_with_code(
    session: AsyncSession, patient: Patient, code: str, actor: Actor, now: dt.datetime | None = None
) -> None:
    """Refuse the account during the opposition window; the code is spent."""
    now = now or utcnow()
    if not await verify_secret(patient.activation_code_hash, normalise_activation_code(code)):
        raise WrongActivationCode()
    _apply(decide_opposition(patient.state, patient.opposition_deadline, now))
    patient.state, patient.state_changed_at = PatientState.OPPOSED, now
    patient.activation_code_hash = None
    audit(session, "account_opposed", actor, patient)


def auto_activate(session: AsyncSession, patient: Patient, now: dt.datetime | None = None) -> bool:
    """Activate an account whose opposition window has ended; False when it is not due."""
    now = now or utcnow()
    deadline = patient.opposition_deadline
    if not decide_auto_activation(patient.state, deadline, now) or deadline is None:
        return False
    patient.state, patient.state_changed_at, patient.activated_at = PatientState.ACTIVE, now, now
    audit(session, "account_auto_activated", SYSTEM, patient, deadline=deadline.isoformat())
    notify_patient(session, patient, "account_activated", "/activation")
    return True


def deactivate(
    session: AsyncSession, patient: Patient, actor: Actor, now: dt.datetime | None = None
) -> None:
    """Pause an active account: it receives no message until reactivated."""
    _apply(decide_deactivation(patient.state))
    patient.state, patient.state_changed_at = PatientState.DEACTIVATED, now or utcnow()
    audit(session, "account_deactivated", actor, patient)


def reactivate(
    session: AsyncSession, patient: Patient, actor: Actor, now: dt.datetime | None = None
) -> None:
    """Reopen a deactivated account."""
    _apply(decide_reactivation(patient.state))
    patient.state, patient.state_changed_at = PatientState.ACTIVE, now or utcnow()
    audit(session, "account_reactivated", actor, patient)


def close_account(
    session: AsyncSession, patient: Patient, actor: Actor, now: dt.datetime | None = None
) -> None:
    """Close an active or deactivated account for good."""
    _apply(decide_closing(patient.state))
    now = now or utcnow()
    patient.state, patient.state_changed_at, patient.closed_at = PatientState.CLOSED, now, now
    audit(session, "account_closed", actor, patient)


# -- changes of mind -----------------------------------------------------------------------


def withdraw_opposition(
    session: AsyncSession, patient: Patient, actor: Actor, now: dt.datetime | None = None
) -> None:
    """A person who opposed the account changed their mind: it is activated."""
    _apply(decide_opposition_withdrawal(patient.state))
    now = now or utcnow()
    patient.state, patient.state_changed_at, patient.activated_at = PatientState.ACTIVE, now, now
    audit(session, "account_opposition_withdrawn", actor, patient)


def reopen_account(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    actor: Actor,
    now: dt.datetime | None = None,
) -> None:
    """Reopen a closed account before the end of its retention (its messages are still kept)."""
    now = now or utcnow()
    closed_at = patient.closed_at
    _apply(decide_reopening(patient.state, closed_at, settings.retention.closed_account_days, now))
    patient.state, patient.state_changed_at, patient.closed_at = PatientState.ACTIVE, now, None
    audit(
        session,
        "account_reopened",
        actor,
        patient,
        closed_at=closed_at.isoformat() if closed_at else "",
    )


async def reissue_activation_code(
    session: AsyncSession, patient: Patient, reason: str, now: dt.datetime | None = None
) -> str:
    """A fresh code for an open account nobody can sign in to yet (returned in clear once)."""
    _apply(decide_code_reissue(patient.state, patient.password_hash is not None))
    code = new_activation_code()
    patient.activation_code_hash = await hash_secret(normalise_activation_code(code))
    audit(session, "activation_code_issued", SYSTEM, patient, reason=reason)
    return code


def identity_outcome(
    settings: Settings, patient: Patient, now: dt.datetime
) -> tuple[Decision, ProofOutcome | None]:
    """What proving one's identity without the letter leads to for this account now."""
    return proof_outcome(
        patient.state,
        patient.password_hash is not None,
        patient.closed_at,
        settings.retention.closed_account_days,
        now,
    )


async def activate_with_identity(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    password: str,
    actor: Actor,
    now: dt.datetime | None = None,
) -> ProofOutcome:
    """After a proof of identity without the letter (INS, birth date, a code sent to the phone
    or e-mail on file): activate, activate after an opposition, or reopen, with a new password."""
    now = now or utcnow()
    decision, outcome = identity_outcome(settings, patient, now)
    _apply(decision)
    assert outcome is not None
    _apply(decide_new_password(password, patient.ins or ""))
    if outcome is ProofOutcome.WITHDRAW_OPPOSITION:
        withdraw_opposition(session, patient, actor, now)
    elif outcome is ProofOutcome.REOPEN:
        reopen_account(session, settings, patient, actor, now)
    patient.password_hash = await hash_secret(password)
    patient.activation_code_hash = None
    if patient.state is not PatientState.ACTIVE:
        patient.state, patient.state_changed_at, patient.activated_at = (
            PatientState.ACTIVE,
            now,
            now,
        )
    if outcome is ProofOutcome.ACTIVATE:
        audit(session, "account_activated", actor, patient, proof="identity")
    return outcome


# -- the job -----------------------------------------------------------------------------


async def auto_activate_due(
    db: Database, now: dt.datetime | None = None, patient_id: int | None = None
) -> int:
    """Activate every account (or the one given) whose window has ended; returns how many."""
    now = now or utcnow()
    async with db.write() as session:
        query = select(Patient).where(
            Patient.state == PatientState.OPPOSITION_WINDOW, Patient.opposition_deadline <= now
        )
        if patient_id is not None:
            query = query.where(Patient.id == patient_id)
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        return sum(auto_activate(session, p, now) for p in (await session.scalars(query)).all())


async def _auto_activate_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    await auto_activate_due(ctx.db, patient_id=payload.get("patient_id"))


def register_jobs(runner: JobRunner) -> None:
    """Register ``patients.auto_activate`` (payload ``{"patient_id": id}``, or ``{}`` for all
    due)."""
    runner.register(AUTO_ACTIVATE, _auto_activate_job)
