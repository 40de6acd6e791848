"""Convocations and the patient's agenda: who may put an appointment in it, what a new version
does, and which professionals may read and add to an agenda the patient shares.

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

from mss.policy.consent import ConsentFacts, ViewerFacts, decide_consent_change, is_treating
from mss.policy.decision import OK, Decision, allow, refuse, refuse_http
from mss.policy.facts import normalize_address
from mss.policy.vocabulary import PROFESSIONAL_KINDS, MailboxKind

MAX_APPOINTMENT_LENGTH = dt.timedelta(hours=24)


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


# -- the agenda shared with professionals ---------------------------------------------------


class AgendaSharing(str, enum.Enum):
    """Which professionals the patient lets see their agenda (default: none)."""

    NONE = "none"
    AUTHORISED = "authorised"  # every professional authorised to read the record
    CHOSEN = "chosen"  # only those the patient chose from the directory


class AgendaAccess(str, enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class AgendaShareFacts:
    """The patient's sharing choice, and whether their account is open."""

    sharing: AgendaSharing = AgendaSharing.NONE
    chosen: frozenset[str] = frozenset()  # idNat of the professionals chosen (CHOSEN only)
    account_active: bool = True


NO_AGENDA = refuse_http(
    404,
    "no_agenda",
    "This patient has no agenda open on this hub",
    "Ce patient n'a pas d'agenda ouvert sur ce service",
)
AGENDA_NOT_FOUND = refuse_http(
    404,
    "not_found",
    "No such appointment in an agenda shared with you",
    "Aucun rendez-vous de ce type dans un agenda partagé avec vous",
)


def decide_agenda_access(
    viewer: ViewerFacts, consent: ConsentFacts, share: AgendaShareFacts, access: AgendaAccess
) -> Decision:
    """May this professional read (or add to) the patient's agenda?

    Two choices of the patient must both let them in: the record's authorisation (the same
    as the DMP's: authorised, or the médecin traitant; never while blocked; no break-glass,
    an agenda is not an emergency record) and the agenda's own sharing (none by default,
    every authorised professional, or those chosen by name).
    """
    verb, verb_fr = ("read", "voir") if access is AgendaAccess.READ else ("add to", "compléter")
    if not share.account_active:
        return NO_AGENDA
    if not viewer.is_professional or not viewer.id_nat:
        return refuse_http(
            403,
            "not_a_professional",
            "Only an identified health professional (idNat) can use a patient's shared agenda",
            "Seul un professionnel de santé identifié (idNat) peut accéder à l'agenda partagé "
            "d'un patient",
        )
    id_nat = viewer.id_nat
    if id_nat in consent.blocked:
        return refuse_http(
            403,
            "blocked",
            "The patient has blocked this professional's access to their record and agenda",
            "Le patient a bloqué l'accès de ce professionnel à son dossier et à son agenda",
        )
    if not (is_treating(viewer, consent) or id_nat in consent.authorised):
        return refuse_http(
            403,
            "not_authorised",
            f"The patient has not authorised this professional: only an authorised "
            f"professional may {verb} a shared agenda",
            f"Le patient n'a pas autorisé ce professionnel : seul un professionnel autorisé "
            f"peut {verb_fr} un agenda partagé",
        )
    if share.sharing is AgendaSharing.NONE:
        return refuse_http(
            403,
            "agenda_not_shared",
            "The patient does not share their agenda with professionals",
            "Le patient ne partage pas son agenda avec les professionnels",
        )
    if share.sharing is AgendaSharing.CHOSEN and id_nat not in share.chosen:
        return refuse_http(
            403,
            "agenda_not_shared_with_you",
            "The patient shares their agenda only with professionals they chose, not with you",
            "Le patient ne partage son agenda qu'avec les professionnels qu'il a choisis, "
            "pas avec vous",
        )
    return allow("Allowed", "Autorisé")


def decide_agenda_sharing_change(viewer: ViewerFacts) -> Decision:
    """The sharing choice is the patient's, or a guardian's for a minor: as consent is."""
    return decide_consent_change(viewer)


def decide_professional_appointment(
    starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime
) -> Decision:
    """An appointment a professional adds: it ends after it starts, and is not over already."""
    if ends_at <= starts_at:
        return refuse_http(
            422,
            "end_before_start",
            "The appointment must end after it starts",
            "Le rendez-vous doit finir après son début",
        )
    if ends_at <= now:
        return refuse_http(
            422,
            "in_the_past",
            "The appointment is already over: a shared agenda takes only coming appointments",
            "Le rendez-vous est déjà passé : un agenda partagé ne reçoit que des rendez-vous à "
            "venir",
        )
    if ends_at - starts_at > MAX_APPOINTMENT_LENGTH:
        return refuse_http(
            422,
            "too_long",
            "An appointment lasts at most 24 hours",
            "Un rendez-vous dure au plus 24 heures",
        )
    return allow("Allowed", "Autorisé")
