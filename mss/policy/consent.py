"""Who may do what in a patient's DMP: the consent engine, as pure functions over plain facts.

Actors: the patient, a guardian acting for a minor, and professionals
(authorised, not authorised, blocked, the médecin traitant, or a
professional invoking break-glass with a stated reason). Actions: list,
read, deposit, mask/unmask (MASQUE_PS, the patient's choice), reveal
(clear INVISIBLE_PATIENT, a professional's act), replace and delete.

A document the viewer may not see answers 404 exactly like a document that
does not exist, so a refusal never confirms that a hidden document exists.
The caller (document store, API, portal) loads the facts, calls
``decide_dmp_action`` and turns the decision into a page or an
OperationOutcome; when ``decision.break_glass`` is set it must log the
access and notify the patient and the médecin traitant.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

from mss.policy.decision import Decision, allow, refuse_http

BREAK_GLASS_MIN_LENGTH = 15
BREAK_GLASS_MAX_LENGTH = 500


class DmpAction(str, enum.Enum):
    LIST = "list"
    READ = "read"
    DEPOSIT = "deposit"
    MASK = "mask"
    UNMASK = "unmask"
    REVEAL = "reveal"  # make an INVISIBLE_PATIENT document visible to the patient
    REPLACE = "replace"
    DELETE = "delete"


class ViewerKind(str, enum.Enum):
    PATIENT = "patient"
    GUARDIAN = "guardian"
    PROFESSIONAL = "professional"
    SERVICE = "service"  # a connected service: decided by mss.policy.services, never here


DOCUMENT_ACTIONS = frozenset(
    {
        DmpAction.READ,
        DmpAction.MASK,
        DmpAction.UNMASK,
        DmpAction.REVEAL,
        DmpAction.REPLACE,
        DmpAction.DELETE,
    }
)


@dataclass(frozen=True)
class ConsentFacts:
    """The patient's record and their choices about it."""

    record_open: bool = True  # account active and DMP not opposed
    authorised: frozenset[str] = frozenset()  # idNat of authorised professionals
    blocked: frozenset[str] = frozenset()  # idNat of blocked professionals
    treating_id_nat: str | None = None  # the médecin traitant
    break_glass_opposed: bool = False


@dataclass(frozen=True)
class ViewerFacts:
    """Who asks: the patient, one of their guardians, or a professional (idNat, institution)."""

    kind: ViewerKind
    id_nat: str | None = None
    institution: str | None = None
    break_glass_reason: str | None = None
    acts_for_patient: bool = True  # patient: it is their record; guardian: a guardianship exists

    @property
    def is_professional(self) -> bool:
        return self.kind is ViewerKind.PROFESSIONAL


@dataclass(frozen=True)
class DocumentFacts:
    """One document as consent sees it: its flags, author and status."""

    masked_from_professionals: bool = False
    invisible_to_patient: bool = False
    invisible_to_legal_representatives: bool = False
    author_id_nat: str | None = None  # None: added by the patient (or a guardian)
    author_institution: str | None = None
    status: str = "current"  # current, replaced, deleted


def _ok(break_glass: bool = False) -> Decision:
    return allow("Allowed", "Autorisé", break_glass=break_glass)


def _no(status: int, reason: str, sentence: str, sentence_fr: str) -> Decision:
    return refuse_http(status, reason, sentence, sentence_fr)


NOT_FOUND = _no(
    404,
    "not_found",
    "No such document in this patient's record",
    "Aucun document de ce type dans le dossier de ce patient",
)
NO_RECORD = _no(
    404,
    "no_record",
    "This patient has no medical record (DMP) open on this hub",
    "Ce patient n'a pas de dossier médical (DMP) ouvert sur ce service",
)

SERVICE_NOT_HERE = _no(
    403,
    "service_not_here",
    "A connected service reads only under its granted scopes (mss.policy.services)",
    "Un service connecté ne lit que selon les autorisations données",
)


def answer_by_document_id(decision: Decision) -> Decision:
    """The answer to a caller who named a document only by its id (the API's read and retrieve).

    The record is found through the document, so "record closed to you" (403) or "no record"
    would confirm that the id exists, and in whose record: every refusal answers like an
    absent document. The refusal itself is still audited on the patient's history.
    """
    return decision if decision.allowed else NOT_FOUND


def decide_break_glass_reason(reason: str | None) -> Decision:
    """A break-glass reason must be stated: printable text, 15 to 500 characters once trimmed."""
    text = (reason or "").strip()
    if not text:
        return _no(
            422,
            "reason_missing",
            "Emergency access needs a stated reason",
            "L'accès en urgence exige un motif",
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        return _no(
            422,
            "reason_invalid",
            "The emergency access reason contains control characters",
            "Le motif d'accès en urgence contient des caractères de contrôle",
        )
    if len(text) < BREAK_GLASS_MIN_LENGTH:
        return _no(
            422,
            "reason_too_short",
            f"The emergency access reason is too short: state it in "
            f"at least {BREAK_GLASS_MIN_LENGTH} characters",
            f"Le motif d'accès en urgence est trop court : au moins {BREAK_GLASS_MIN_LENGTH} "
            "caractères",
        )
    if len(text) > BREAK_GLASS_MAX_LENGTH:
        return _no(
            422,
            "reason_too_long",
            f"The emergency access reason is longer than {BREAK_GLASS_MAX_LENGTH} characters",
            f"Le motif d'accès en urgence dépasse {BREAK_GLASS_MAX_LENGTH} caractères",
        )
    return _ok()


def is_treating(viewer: ViewerFacts, consent: ConsentFacts) -> bool:
    """The médecin traitant (never while the patient blocks them)."""
    return (
        viewer.is_professional
        and viewer.id_nat is not None
        and viewer.id_nat == consent.treating_id_nat
        and viewer.id_nat not in consent.blocked
    )


def decide_dmp_action(
    viewer: ViewerFacts,
    consent: ConsentFacts,
    action: DmpAction,
    document: DocumentFacts | None = None,
) -> Decision:
    """May ``viewer`` do ``action`` on the record (or on ``document`` for document actions)?"""
    if action in DOCUMENT_ACTIONS and document is None:
        raise ValueError(f"{action.value} concerns one document: pass its facts")
    if viewer.kind is ViewerKind.SERVICE:
        return SERVICE_NOT_HERE
    if not consent.record_open:
        return NO_RECORD
    if document is not None and document.status == "deleted":
        return NOT_FOUND
    if viewer.is_professional:
        return _professional(viewer, consent, action, document)
    return _patient_side(viewer, action, document)


def can_see(viewer: ViewerFacts, consent: ConsentFacts, document: DocumentFacts) -> bool:
    """Whether a document appears at all for this viewer (what a list may show)."""
    return decide_dmp_action(viewer, consent, DmpAction.READ, document).allowed


def _hidden_from_patient_side(viewer: ViewerFacts, document: DocumentFacts) -> bool:
    if document.invisible_to_patient:
        return True
    return viewer.kind is ViewerKind.GUARDIAN and document.invisible_to_legal_representatives


def _patient_side(
    viewer: ViewerFacts, action: DmpAction, document: DocumentFacts | None
) -> Decision:
    """The patient, or a guardian acting for them: everything on what they can see."""
    if not viewer.acts_for_patient:
        return _no(
            403,
            "not_their_record",
            "This record belongs to another patient, for whom this "
            "person is not a legal representative",
            "Ce dossier est celui d'un autre patient, "
            "dont cette personne n'est pas le représentant légal",
        )
    if document is not None and _hidden_from_patient_side(viewer, document):
        return NOT_FOUND
    if action is DmpAction.REVEAL:
        return _no(
            403,
            "forbidden",
            "Only a professional can make a document visible to the patient",
            "Seul un professionnel peut rendre un document visible au patient",
        )
    if (
        action in (DmpAction.REPLACE, DmpAction.DELETE)
        and document is not None
        and document.author_id_nat is not None
    ):
        return _no(
            403,
            "not_author",
            "Only its author can replace or delete a professional's "
            "document; the patient can hide it from professionals instead",
            "Seul son auteur peut remplacer ou supprimer le document d'un professionnel ; "
            "le patient peut le masquer aux professionnels",
        )
    return _ok()


def _professional(
    viewer: ViewerFacts, consent: ConsentFacts, action: DmpAction, document: DocumentFacts | None
) -> Decision:
    id_nat = viewer.id_nat
    if not id_nat:
        return _no(
            403,
            "not_a_professional",
            "Only an identified health professional (idNat) can use a patient's record",
            "Seul un professionnel de santé identifié (idNat) peut accéder au dossier d'un patient",
        )
    if id_nat in consent.blocked:
        return _no(
            403,
            "blocked",
            "The patient has blocked this professional's access to their record",
            "Le patient a bloqué l'accès de ce professionnel à son dossier",
        )
    if action is DmpAction.DEPOSIT:
        return _ok()  # an unauthorised professional may still deposit
    if action in (DmpAction.MASK, DmpAction.UNMASK):
        return _no(
            403,
            "patient_only",
            "Only the patient decides to hide a document from professionals or to show it again",
            "Seul le patient décide de masquer un document aux professionnels ou de le démasquer",
        )
    author = document is not None and document.author_id_nat == id_nat
    if action in (DmpAction.REPLACE, DmpAction.DELETE):
        return _author_change(viewer, document, author)
    treating = is_treating(viewer, consent)
    granted = _ok()
    if not treating and id_nat not in consent.authorised:
        granted = _break_glass(viewer, consent)
        if not granted.allowed:
            return granted
    # MASQUE_PS hides a document from every professional but the médecin traitant and its author.
    if document is not None and document.masked_from_professionals and not (treating or author):
        return NOT_FOUND
    return granted


def _author_change(viewer: ViewerFacts, document: DocumentFacts | None, author: bool) -> Decision:
    """Replace or delete: the author, or a professional of the author's institution."""
    assert document is not None
    same_institution = (
        viewer.institution is not None and viewer.institution == document.author_institution
    )
    if author or same_institution:
        return _ok()
    if document.masked_from_professionals:
        return NOT_FOUND
    return _no(
        403,
        "not_author",
        "Only the author of a document, or a professional of the same "
        "institution, can replace or delete it",
        "Seul l'auteur d'un document, ou un "
        "professionnel de la même structure, peut le remplacer ou le supprimer",
    )


def _break_glass(viewer: ViewerFacts, consent: ConsentFacts) -> Decision:
    if viewer.break_glass_reason is None:
        return _no(
            403,
            "not_authorised",
            "The patient has not authorised this professional to "
            "read their record; in an emergency, state a reason (X-Break-Glass-Reason)",
            "Le patient n'a pas autorisé ce professionnel à consulter son dossier ; en "
            "urgence, indiquez un motif (accès bris de glace)",
        )
    if consent.break_glass_opposed:
        return _no(
            403,
            "break_glass_opposed",
            "The patient opposed emergency access to their record in advance",
            "Le patient s'est opposé par avance à l'accès en urgence à son dossier",
        )
    reason = decide_break_glass_reason(viewer.break_glass_reason)
    if not reason.allowed:
        return reason
    return _ok(break_glass=True)


def decide_consent_change(viewer: ViewerFacts) -> Decision:
    """Authorisations, blocks, the médecin traitant and oppositions are the patient's (or
    guardian's)."""
    if viewer.kind is ViewerKind.SERVICE:
        return SERVICE_NOT_HERE
    if not viewer.is_professional and not viewer.acts_for_patient:
        return _patient_side(viewer, DmpAction.LIST, None)
    if viewer.is_professional:
        return _no(
            403,
            "patient_only",
            "Only the patient or their legal representative manages consent to their record",
            "Seul le patient ou son représentant légal gère les "
            "autorisations d'accès à son dossier",
        )
    return _ok()


def decide_new_version(previous_status: str) -> Decision:
    """A new version replaces only the latest one (``current``) of a document."""
    if previous_status != "current":
        return _no(
            422,
            "not_latest",
            "Only the latest version of a document can be replaced",
            "Seule la dernière version d'un document peut être remplacée",
        )
    return _ok()


def decide_unique_id(unique_id: str, already_held: bool) -> Decision:
    """A document's uniqueId names one document of the record."""
    if already_held:
        return _no(
            422,
            "duplicate",
            f"A document with uniqueId {unique_id} is already in the record",
            f"Un document d'uniqueId {unique_id} est déjà dans le dossier",
        )
    return _ok()
