"""Convocations and the patient's agenda: who may put an appointment in it, and what a new version
does.

The agenda job and the portal load the facts (the stored convocation,
the existing appointment) and ask these functions; the refusals become
the reason of the report sent back to the hospital, or the sentence shown
in the portal.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from mss.policy.decision import OK, Decision, refuse
from mss.policy.facts import normalize_address
from mss.policy.vocabulary import PROFESSIONAL_KINDS, MailboxKind


class AgendaAction(str, enum.Enum):
    CREATE = "created"
    UPDATE = "updated"
    CANCEL = "cancelled"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ConvocationFacts:
    """A delivered convocation as the agenda job read it."""

    sender: str
    sender_kind: MailboxKind | None
    signature_status: str
    signer_address: str | None
    organizer: str
    attendees: Sequence[str]
    patient_address: str


@dataclass(frozen=True)
class AppointmentFacts:
    """An appointment already in the agenda."""

    origin: str  # convocation, patient
    organizer: str
    sequence: int
    cancelled: bool
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None


@dataclass(frozen=True)
class AgendaOutcome:
    """What a convocation does to the agenda, and why."""

    decision: Decision
    action: AgendaAction = AgendaAction.UNCHANGED
    note: str = ""


def decide_convocation(facts: ConvocationFacts) -> Decision:
    """A signed message from a professional-side mailbox that organises it, to an invited
    patient."""
    sender = normalize_address(facts.sender)
    if facts.sender_kind not in PROFESSIONAL_KINDS:
        return refuse(
            550,
            "5.7.1",
            "Only a professional, service or application mailbox of this hub may "
            "send a convocation",
            "Seule une boîte professionnelle, de service ou applicative "
            "de ce hub peut envoyer une convocation",
        )
    if facts.signature_status != "valid" or normalize_address(facts.signer_address or "") != sender:
        return refuse(
            550,
            "5.7.1",
            "A convocation must carry a valid S/MIME signature of its sender",
            "Une convocation doit porter une signature S/MIME valide de son expéditeur",
        )
    if normalize_address(facts.organizer) != sender:
        return refuse(
            550,
            "5.7.1",
            f"ORGANIZER {facts.organizer} is not the sender <{sender}>",
            f"ORGANIZER {facts.organizer} n'est pas l'expéditeur <{sender}>",
        )
    patient = normalize_address(facts.patient_address)
    if patient not in {normalize_address(a) for a in facts.attendees}:
        return refuse(
            550,
            "5.6.0",
            f"The patient <{patient}> is not an ATTENDEE of the convocation",
            f"Le patient <{patient}> n'est pas un ATTENDEE de la convocation",
        )
    return OK


def decide_agenda_change(
    existing: AppointmentFacts | None, method: str, sequence: int, organizer: str
) -> AgendaOutcome:
    """REQUEST creates or (with a higher SEQUENCE) updates; CANCEL cancels; repeats change
    nothing."""
    if existing is not None and (
        existing.origin != "convocation"
        or normalize_address(existing.organizer) != normalize_address(organizer)
    ):
        return AgendaOutcome(
            refuse(
                550,
                "5.7.1",
                "This UID already names an appointment of another organizer",
                "Cet UID désigne déjà un rendez-vous d'un autre organisateur",
            )
        )
    if method == "CANCEL":
        if existing is None:
            return AgendaOutcome(OK, note="cancel of an unknown appointment: nothing to do")
        if existing.cancelled or sequence < existing.sequence:
            return AgendaOutcome(OK, note="already cancelled or an older version")
        return AgendaOutcome(OK, AgendaAction.CANCEL)
    if existing is None:
        return AgendaOutcome(OK, AgendaAction.CREATE)
    if sequence <= existing.sequence:
        return AgendaOutcome(OK, note="same or older SEQUENCE: a duplicate")
    return AgendaOutcome(OK, AgendaAction.UPDATE)


def decide_appointment_reply(appointment: AppointmentFacts, now: dt.datetime) -> Decision:
    """The patient answers a convocation that is still on and not over."""
    if appointment.origin != "convocation":
        return refuse(
            550,
            "5.7.1",
            "Only a convocation can be accepted or declined",
            "Seule une convocation peut être acceptée ou refusée",
        )
    if appointment.cancelled:
        return refuse(
            550,
            "5.7.1",
            "This appointment was cancelled by the organizer",
            "Ce rendez-vous a été annulé par l'organisateur",
        )
    if appointment.ends_at is not None and appointment.ends_at <= now:
        return refuse(550, "5.7.1", "This appointment is over", "Ce rendez-vous est passé")
    return OK
