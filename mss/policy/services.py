"""What a connected service (an application of the catalogue) may do in a patient's space.

A service acts for the space it was connected from, under the scopes the patient
(or the guardian, for a child's space) ticked on the consent page. It never sees
more than the person who connected it (the consent engine decides that first,
for the patient or the guardian), and it sees less: only the document types its
scopes name, never a document the patient masked from professionals (MASQUE_PS),
nothing from a record that is closed. A document outside what it may see
answers exactly like an absent one. The profile and the agenda are read whole, as the
person who connected the service reads them in the portal: neither has a flag by which the
patient hides one item from a reader of their space (a masking flag, if one is added, is to be
decided here as ``masked_from_professionals`` is for documents).

Scopes (RFC 6749 §3.3 scope tokens):

- ``documents:<LOINC type code>``: read the documents of that type;
- ``measurements:write``: write measurements (FHIR Observation: weight, blood sugar);
- ``profile:read``: read the medical profile's allergies and treatments (FHIR
  AllergyIntolerance, MedicationStatement), while the record is open;
- ``agenda:read``: read the agenda (FHIR Appointment and the iCalendar feed), while the
  patient's account is open.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import urllib.parse
from dataclasses import dataclass

from mss.policy.agenda import NO_AGENDA, AgendaShareFacts
from mss.policy.consent import (
    NO_RECORD,
    NOT_FOUND,
    ConsentFacts,
    DmpAction,
    DocumentFacts,
    ViewerFacts,
    ViewerKind,
    decide_dmp_action,
)
from mss.policy.decision import Decision, allow, refuse_http
from mss.policy.medical_profile import decide_profile_read
from mss.policy.patient_dossier import PATIENT_DOCUMENT_TYPES

DOCUMENTS_PREFIX = "documents:"
WRITE_MEASUREMENTS = "measurements:write"
READ_PROFILE = "profile:read"
READ_AGENDA = "agenda:read"
# The scopes that are one word, not a family (documents:<type>).
FIXED_SCOPES = (WRITE_MEASUREMENTS, READ_PROFILE, READ_AGENDA)
_LOINC = re.compile(r"^[0-9]{1,7}-[0-9]$")
MAX_SCOPES = 20


class ServiceStatus(str, enum.Enum):
    """Where a service stands in the catalogue's review."""

    UNDER_REVIEW = "under_review"  # registered, not yet shown to patients
    REFERENCED = "referenced"  # reviewed: shown in the catalogue, may be connected
    WITHDRAWN = "withdrawn"  # taken out: its tokens stop working


class ServiceAction(str, enum.Enum):
    LIST_DOCUMENTS = "list_documents"
    READ_DOCUMENT = "read_document"
    WRITE_MEASUREMENT = "write_measurement"
    READ_PROFILE = "read_profile"
    READ_AGENDA = "read_agenda"


DOCUMENT_LABELS = {code: label for code, label in PATIENT_DOCUMENT_TYPES.values() if code}


def scope_label(scope: str) -> str:
    """The scope in a patient's words, for the consent page and the list of connections."""
    if scope == WRITE_MEASUREMENTS:
        return "Enregistrer des mesures (poids, glycémie) dans votre espace"
    if scope == READ_PROFILE:
        return "Lire votre profil médical : allergies et traitements"
    if scope == READ_AGENDA:
        return "Lire votre agenda : vos rendez-vous"
    if scope.startswith(DOCUMENTS_PREFIX):
        code = scope[len(DOCUMENTS_PREFIX) :]
        label = DOCUMENT_LABELS.get(code, f"type {code}")
        return f"Lire vos documents : {label}"
    return scope


def _no(status: int, reason: str, sentence: str, sentence_fr: str) -> Decision:
    return refuse_http(status, reason, sentence, sentence_fr)


def decide_registered_scopes(scopes: list[str]) -> Decision:
    """The scopes an operator registers for a service: known forms, at least one, no repeat."""
    if not scopes:
        return _no(
            422,
            "no_scope",
            "A service asks for at least one scope",
            "Un service demande au moins une autorisation",
        )
    if len(scopes) > MAX_SCOPES or len(set(scopes)) != len(scopes):
        return _no(
            422,
            "scopes_invalid",
            f"A service's scopes are at most {MAX_SCOPES}, each given once",
            f"Les autorisations d'un service sont au plus {MAX_SCOPES}, chacune une fois",
        )
    for scope in scopes:
        known = scope in FIXED_SCOPES or (
            scope.startswith(DOCUMENTS_PREFIX) and _LOINC.match(scope[len(DOCUMENTS_PREFIX) :])
        )
        if not known:
            return _no(
                422,
                "unknown_scope",
                f"Unknown scope {scope!r}: use documents:<LOINC type code>, "
                f"{', '.join(FIXED_SCOPES)}",
                f"Autorisation inconnue {scope!r}",
            )
    return allow()


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def decide_service_url(url: str, what: str) -> Decision:
    """A redirect URI or home URL: absolute https without fragment; http only on the loopback
    (RFC 8252 §7.3), for a service on the patient's own machine and for development."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    secure = parts is not None and (
        parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK)
    )
    if not secure or parts is None or not parts.netloc or parts.fragment:
        return _no(
            422,
            "url_refused",
            f"{what} {url!r} must be an absolute https:// URL without fragment "
            "(http:// only on 127.0.0.1 or localhost)",
            f"{what} {url!r} doit être une adresse https:// complète, sans fragment",
        )
    if any(c.isspace() or ord(c) < 32 for c in url):
        return _no(
            422,
            "url_refused",
            f"{what} {url!r} contains spaces or control characters",
            f"{what} {url!r} contient des espaces ou des caractères de contrôle",
        )
    return allow()


def decide_chosen_scopes(requested: frozenset[str], chosen: frozenset[str]) -> Decision:
    """On the consent page the patient keeps some of the scopes the service asked for."""
    if not chosen:
        return _no(
            400,
            "nothing_chosen",
            "Choose at least one permission, or refuse the connection",
            "Cochez au moins une autorisation, ou refusez la connexion",
        )
    if not chosen <= requested:
        return _no(
            400,
            "not_requested",
            "A permission the service did not ask for cannot be granted",
            "Une autorisation que le service n'a pas demandée ne peut pas être donnée",
        )
    return allow()


@dataclass(frozen=True)
class TokenFacts:
    """What the hub holds about a bearer token presented by a service."""

    known: bool
    expires_at: dt.datetime | None = None
    revoked: bool = False  # the token, or its connection (the patient revoked it)
    service_status: ServiceStatus = ServiceStatus.REFERENCED


INVALID_TOKEN = _no(
    401,
    "invalid_token",
    "The access token is unknown, expired or revoked",
    "Le jeton d'accès est inconnu, expiré ou révoqué",
)


def decide_token(token: TokenFacts, now: dt.datetime) -> Decision:
    """RFC 6750 §3.1 invalid_token for every token that no longer stands, with no detail."""
    if not token.known or token.revoked or token.expires_at is None:
        return INVALID_TOKEN
    if token.expires_at <= now or token.service_status is not ServiceStatus.REFERENCED:
        return INVALID_TOKEN
    return allow()


@dataclass(frozen=True)
class ServiceFacts:
    """A connected service: its granted scopes and the person it acts as (patient or guardian)."""

    scopes: frozenset[str]
    acting_as: ViewerFacts

    def reads_type(self, type_code: str) -> bool:
        return f"{DOCUMENTS_PREFIX}{type_code}" in self.scopes

    @property
    def reads_documents(self) -> bool:
        return any(s.startswith(DOCUMENTS_PREFIX) for s in self.scopes)


INSUFFICIENT_SCOPE = _no(
    403,
    "insufficient_scope",
    "The patient did not grant this service the permission for this request",
    "Le patient n'a pas donné à ce service l'autorisation nécessaire",
)


def decide_service_action(
    service: ServiceFacts,
    consent: ConsentFacts,
    action: ServiceAction,
    document: DocumentFacts | None = None,
    type_code: str = "",
    agenda: AgendaShareFacts | None = None,
) -> Decision:
    """May this connected service do ``action`` (on ``document`` of ``type_code``)?

    Reading the agenda needs ``agenda``, the facts of the space's agenda (only whether the
    account is open matters: the patient's sharing choice is about professionals, and the
    service reads as the person who connected it)."""
    if service.acting_as.kind not in (ViewerKind.PATIENT, ViewerKind.GUARDIAN):
        raise ValueError("a service acts for a patient or a guardian")
    if action is ServiceAction.READ_DOCUMENT and document is None:
        raise ValueError("reading concerns one document: pass its facts")
    if action is ServiceAction.READ_AGENDA and agenda is None:
        raise ValueError("reading the agenda needs the agenda's facts")
    if not service.acting_as.acts_for_patient:
        return decide_dmp_action(service.acting_as, consent, DmpAction.LIST)
    if action is ServiceAction.WRITE_MEASUREMENT:
        return allow() if WRITE_MEASUREMENTS in service.scopes else INSUFFICIENT_SCOPE
    if action is ServiceAction.READ_PROFILE:
        if READ_PROFILE not in service.scopes:
            return INSUFFICIENT_SCOPE
        return decide_profile_read(service.acting_as, consent)  # closed record: NO_RECORD
    if action is ServiceAction.READ_AGENDA:
        assert agenda is not None
        if READ_AGENDA not in service.scopes:
            return INSUFFICIENT_SCOPE
        return allow() if agenda.account_active else NO_AGENDA
    if not consent.record_open:
        return NO_RECORD
    if not service.reads_documents:
        return INSUFFICIENT_SCOPE
    if action is ServiceAction.LIST_DOCUMENTS:
        return allow()
    assert document is not None
    seen = decide_dmp_action(service.acting_as, consent, DmpAction.READ, document)
    if not seen.allowed:
        return seen
    # Masked from professionals: a service, which is not even one, never sees it either.
    if document.masked_from_professionals or not service.reads_type(type_code):
        return NOT_FOUND
    return allow()


def service_can_see(
    service: ServiceFacts, consent: ConsentFacts, document: DocumentFacts, type_code: str
) -> bool:
    """Whether a document appears at all in what this service lists."""
    return decide_service_action(
        service, consent, ServiceAction.READ_DOCUMENT, document, type_code
    ).allowed
