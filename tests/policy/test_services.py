"""``mss.policy.services``: what a connected service may see and do, refusals included."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from mss.policy.agenda import NO_AGENDA, AgendaShareFacts, AgendaSharing
from mss.policy.consent import (
    NO_RECORD,
    NOT_FOUND,
    SERVICE_NOT_HERE,
    ConsentFacts,
    DmpAction,
    DocumentFacts,
    ViewerFacts,
    ViewerKind,
    decide_consent_change,
    decide_dmp_action,
)
from mss.policy.decision import Decision
from mss.policy.services import (
    INSUFFICIENT_SCOPE,
    INVALID_TOKEN,
    READ_AGENDA,
    READ_PROFILE,
    ServiceAction,
    ServiceFacts,
    ServiceStatus,
    TokenFacts,
    decide_chosen_scopes,
    decide_registered_scopes,
    decide_service_action,
    decide_service_url,
    decide_token,
    scope_label,
    service_can_see,
)

CONSULTATION, BIOLOGY = "11488-4", "11502-2"
PATIENT = ViewerFacts(ViewerKind.PATIENT)
GUARDIAN = ViewerFacts(ViewerKind.GUARDIAN)
OPEN = ConsentFacts()
FLAGS = {
    "plain": DocumentFacts(),
    "masked": DocumentFacts(masked_from_professionals=True),
    "invisible_patient": DocumentFacts(invisible_to_patient=True),
    "invisible_guardians": DocumentFacts(invisible_to_legal_representatives=True),
    "deleted": DocumentFacts(status="deleted"),
}
NOW = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
AGENDA = AgendaShareFacts()  # the account is open; shared with no professional


def service(*scopes: str, acting_as: ViewerFacts = PATIENT) -> ServiceFacts:
    return ServiceFacts(frozenset(scopes), acting_as)


def read(facts: ServiceFacts, document: str, type_code: str = CONSULTATION) -> int:
    decision = decide_service_action(
        facts, OPEN, ServiceAction.READ_DOCUMENT, FLAGS[document], type_code
    )
    return decision.status


@pytest.mark.parametrize(
    ("acting_as", "visible"),
    [(PATIENT, {"plain", "invisible_guardians"}), (GUARDIAN, {"plain"})],
)
def test_a_service_sees_no_more_than_its_person_and_never_a_masked_document(
    acting_as: ViewerFacts, visible: set[str]
) -> None:
    facts = service(f"documents:{CONSULTATION}", acting_as=acting_as)
    seen = {name for name in FLAGS if read(facts, name) == 200}
    assert seen == visible
    for name in set(FLAGS) - visible:  # every refusal reads as an absent document
        assert (
            decide_service_action(
                facts, OPEN, ServiceAction.READ_DOCUMENT, FLAGS[name], CONSULTATION
            )
            == NOT_FOUND
        )
    # What the person sees themselves is a superset: the consent engine is asked first.
    for name in visible:
        assert decide_dmp_action(acting_as, OPEN, DmpAction.READ, FLAGS[name]).allowed


def test_only_the_document_types_of_its_scopes() -> None:
    facts = service(f"documents:{BIOLOGY}")
    assert read(facts, "plain", BIOLOGY) == 200
    assert read(facts, "plain", CONSULTATION) == 404
    assert read(facts, "plain", "") == 404
    assert not service_can_see(facts, OPEN, FLAGS["plain"], CONSULTATION)


def test_listing_and_writing_need_their_scopes() -> None:
    writer = service("measurements:write")
    assert decide_service_action(writer, OPEN, ServiceAction.WRITE_MEASUREMENT).allowed
    assert decide_service_action(writer, OPEN, ServiceAction.LIST_DOCUMENTS) == INSUFFICIENT_SCOPE
    assert read(writer, "plain") == 403
    reader = service(f"documents:{CONSULTATION}")
    assert decide_service_action(reader, OPEN, ServiceAction.LIST_DOCUMENTS).allowed
    refused = decide_service_action(reader, OPEN, ServiceAction.WRITE_MEASUREMENT)
    assert refused == INSUFFICIENT_SCOPE and refused.status == 403
    assert "autorisation" in refused.sentence_fr


def test_closed_record_and_ended_guardianship() -> None:
    facts = service(f"documents:{CONSULTATION}", "measurements:write")
    closed = ConsentFacts(record_open=False)
    assert decide_service_action(facts, closed, ServiceAction.LIST_DOCUMENTS) == NO_RECORD
    assert (
        decide_service_action(facts, closed, ServiceAction.READ_DOCUMENT, FLAGS["plain"], "x")
        == NO_RECORD
    )
    former = service(
        f"documents:{CONSULTATION}",
        "measurements:write",
        acting_as=ViewerFacts(ViewerKind.GUARDIAN, acts_for_patient=False),
    )
    for action in ServiceAction:
        decision = decide_service_action(former, OPEN, action, FLAGS["plain"], CONSULTATION, AGENDA)
        assert decision.status == 403 and decision.reason == "not_their_record"


def _profile(facts: ServiceFacts, consent: ConsentFacts = OPEN) -> Decision:
    return decide_service_action(facts, consent, ServiceAction.READ_PROFILE)


def _agenda(facts: ServiceFacts, agenda: AgendaShareFacts = AGENDA) -> Decision:
    return decide_service_action(facts, OPEN, ServiceAction.READ_AGENDA, agenda=agenda)


@pytest.mark.parametrize("acting_as", [PATIENT, GUARDIAN])
def test_profile_and_agenda_are_read_under_their_own_scopes(acting_as: ViewerFacts) -> None:
    both = service(READ_PROFILE, READ_AGENDA, acting_as=acting_as)
    assert decide_service_action(both, OPEN, ServiceAction.READ_PROFILE).allowed
    assert decide_service_action(both, OPEN, ServiceAction.READ_AGENDA, agenda=AGENDA).allowed
    # Each scope grants its own reading, and nothing else.
    assert _profile(service(READ_AGENDA, acting_as=acting_as)) == INSUFFICIENT_SCOPE
    assert _agenda(service(READ_PROFILE, acting_as=acting_as)) == INSUFFICIENT_SCOPE
    for other in (f"documents:{CONSULTATION}", "measurements:write"):
        assert _profile(service(other, acting_as=acting_as)) == INSUFFICIENT_SCOPE
        assert _agenda(service(other, acting_as=acting_as)) == INSUFFICIENT_SCOPE
    assert decide_service_action(both, OPEN, ServiceAction.LIST_DOCUMENTS) == INSUFFICIENT_SCOPE
    assert decide_service_action(both, OPEN, ServiceAction.WRITE_MEASUREMENT) == INSUFFICIENT_SCOPE
    assert read(both, "plain") == 403


def test_profile_and_agenda_follow_the_space_not_the_professionals_sharing() -> None:
    both = service(READ_PROFILE, READ_AGENDA)
    # The agenda's sharing choice is about professionals: the service reads as the patient.
    for sharing in AgendaSharing:
        assert decide_service_action(
            both, OPEN, ServiceAction.READ_AGENDA, agenda=AgendaShareFacts(sharing=sharing)
        ).allowed
    assert _agenda(both, AgendaShareFacts(account_active=False)) == NO_AGENDA
    # The profile is read as the person reads it: not from a closed record.
    assert _profile(both, ConsentFacts(record_open=False)) == NO_RECORD
    # Nor is the profile closed by the patient's choices about professionals.
    assert _profile(both, ConsentFacts(blocked=frozenset({"8"}), break_glass_opposed=True)).allowed
    with pytest.raises(ValueError, match="agenda's facts"):
        decide_service_action(both, OPEN, ServiceAction.READ_AGENDA)


def test_a_revoked_connection_or_withdrawn_service_reads_nothing() -> None:
    # Revocation ends the token (401 invalid_token) before any scope is looked at.
    later = NOW + dt.timedelta(minutes=5)
    assert decide_token(TokenFacts(known=True, expires_at=later, revoked=True), NOW) == (
        INVALID_TOKEN
    )
    withdrawn = TokenFacts(known=True, expires_at=later, service_status=ServiceStatus.WITHDRAWN)
    assert decide_token(withdrawn, NOW) == INVALID_TOKEN
    # A guardian who no longer acts for the child: their service reads neither.
    former = service(
        READ_PROFILE,
        READ_AGENDA,
        acting_as=ViewerFacts(ViewerKind.GUARDIAN, acts_for_patient=False),
    )
    assert _profile(former).reason == _agenda(former).reason == "not_their_record"


def test_a_service_is_never_judged_as_a_professional_nor_by_the_consent_engine() -> None:
    with pytest.raises(ValueError, match="acts for a patient or a guardian"):
        decide_service_action(
            service("measurements:write", acting_as=ViewerFacts(ViewerKind.PROFESSIONAL, "8")),
            OPEN,
            ServiceAction.WRITE_MEASUREMENT,
        )
    with pytest.raises(ValueError, match="one document"):
        decide_service_action(service("documents:1-1"), OPEN, ServiceAction.READ_DOCUMENT)
    as_service = ViewerFacts(ViewerKind.SERVICE)
    for action, document in itertools.product(DmpAction, FLAGS.values()):
        assert decide_dmp_action(as_service, OPEN, action, document) == SERVICE_NOT_HERE
    assert decide_consent_change(as_service) == SERVICE_NOT_HERE


def test_tokens() -> None:
    live = TokenFacts(known=True, expires_at=NOW + dt.timedelta(minutes=1))
    assert decide_token(live, NOW).allowed
    for dead in (
        TokenFacts(known=False),
        TokenFacts(known=True, expires_at=NOW),
        TokenFacts(known=True, expires_at=NOW + dt.timedelta(minutes=1), revoked=True),
        TokenFacts(
            known=True,
            expires_at=NOW + dt.timedelta(minutes=1),
            service_status=ServiceStatus.WITHDRAWN,
        ),
        TokenFacts(
            known=True,
            expires_at=NOW + dt.timedelta(minutes=1),
            service_status=ServiceStatus.UNDER_REVIEW,
        ),
    ):
        assert decide_token(dead, NOW) == INVALID_TOKEN
    assert INVALID_TOKEN.status == 401


def test_registered_scopes() -> None:
    assert decide_registered_scopes(["measurements:write", "documents:11502-2"]).allowed
    assert decide_registered_scopes(["profile:read", "agenda:read"]).allowed
    assert decide_registered_scopes([]).reason == "no_scope"
    assert decide_registered_scopes(["documents:1-1", "documents:1-1"]).reason == "scopes_invalid"
    for wrong in (
        "documents:",
        "documents:abc",
        "profile",
        "measurements:read",
        "documents:1 2",
        "profile:write",
        "agenda:write",
        "agenda",
        "Profile:read",
    ):
        refused = decide_registered_scopes([wrong])
        assert refused.reason == "unknown_scope" and wrong in refused.sentence


def test_chosen_scopes() -> None:
    asked = frozenset({"measurements:write", "documents:11502-2"})
    assert decide_chosen_scopes(asked, frozenset({"measurements:write"})).allowed
    assert decide_chosen_scopes(asked, frozenset()).reason == "nothing_chosen"
    more = decide_chosen_scopes(asked, frozenset({"documents:11488-4"}))
    assert more.reason == "not_requested" and more.status == 400


def test_scope_labels_are_french() -> None:
    assert (
        scope_label("documents:11502-2") == "Lire vos documents : Résultats d'analyses biologiques"
    )
    assert scope_label("documents:1-1") == "Lire vos documents : type 1-1"
    assert scope_label("measurements:write").startswith("Enregistrer des mesures")
    assert scope_label("profile:read") == "Lire votre profil médical : allergies et traitements"
    assert scope_label("agenda:read") == "Lire votre agenda : vos rendez-vous"


def test_service_urls() -> None:
    for good in (
        "https://carnet.example/retour",
        "http://127.0.0.1:8765/retour",
        "http://[::1]/cb",
    ):
        assert decide_service_url(good, "redirect URI").allowed, good
    for bad in (
        "http://carnet.example/retour",
        "https://carnet.example/retour#x",
        "/retour",
        "javascript:alert(1)",
        "https:///retour",
        "https://carnet.example/re tour",
        "https://carnet.example/\x00",
        "http://[::1/cb",
    ):
        refused = decide_service_url(bad, "redirect URI")
        assert refused.reason == "url_refused" and refused.status == 422, bad
