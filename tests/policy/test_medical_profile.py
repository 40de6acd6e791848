"""Who reads the medical profile and who records in it (mss.policy.medical_profile): the role ×
action table of tests/dmp/matrix.py, and each refusal's reason and sentence."""

from __future__ import annotations

import pytest

from mss.policy.consent import ConsentFacts, ViewerFacts, ViewerKind
from mss.policy.medical_profile import (
    PROFESSIONAL_CATEGORIES,
    ProfileAction,
    decide_profile_action,
    decide_profile_read,
    decide_profile_write,
)
from tests.dmp.matrix import ID_NATS, PROFILE_READ, PROFILE_WRITE, ROLES
from tests.dmp.test_consent_policy import consent_for, viewer_for


@pytest.mark.parametrize("role", ROLES)
def test_read(role: str) -> None:
    decision = decide_profile_read(viewer_for(role), consent_for(role))
    assert decision.allowed == (PROFILE_READ[role] == 200), decision
    if decision.allowed:
        assert decision.break_glass == (role == "break_glass")  # logged and notified
    else:
        assert decision.status == PROFILE_READ[role]
    assert decide_profile_action(viewer_for(role), consent_for(role), ProfileAction.READ) == (
        decision
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("category", sorted(PROFESSIONAL_CATEGORIES))
def test_write(role: str, category: str) -> None:
    decision = decide_profile_write(viewer_for(role), consent_for(role), category)
    assert decision.allowed == (PROFILE_WRITE[role] == 201), decision
    assert not decision.break_glass  # writing is never an emergency access
    if not decision.allowed:
        assert decision.status == PROFILE_WRITE[role]


def test_break_glass_reads_but_never_writes() -> None:
    decision = decide_profile_write(
        viewer_for("break_glass"), consent_for("break_glass"), "allergy"
    )
    assert (decision.status, decision.reason) == (403, "not_authorised_to_write")
    assert "emergency access (break-glass) only reads them" in decision.sentence
    assert "l'accès en urgence permet seulement de les lire" in decision.sentence_fr
    unauthorised = decide_profile_write(
        viewer_for("unauthorised"), consent_for("unauthorised"), "treatment"
    )
    assert unauthorised.reason == "not_authorised_to_write"


def test_refusals_say_why() -> None:
    blocked = decide_profile_write(viewer_for("blocked"), consent_for("blocked"), "allergy")
    assert (blocked.reason, blocked.sentence_fr) == (
        "blocked",
        "Le patient a bloqué l'accès de ce professionnel à son dossier",
    )
    closed = ConsentFacts(record_open=False, authorised=frozenset({ID_NATS["authorised"]}))
    for decision in (
        decide_profile_read(viewer_for("authorised"), closed),
        decide_profile_write(viewer_for("authorised"), closed, "allergy"),
    ):
        assert (decision.status, decision.reason) == (404, "no_record")
    history = decide_profile_write(viewer_for("treating"), consent_for("treating"), "vaccination")
    assert (history.status, history.reason) == (422, "category_not_recorded")
    assert "only allergies and treatments" in history.sentence
    anonymous = ViewerFacts(ViewerKind.PROFESSIONAL, None)
    assert decide_profile_read(anonymous, consent_for("x")).reason == "not_a_professional"


def test_a_guardian_without_guardianship_is_refused() -> None:
    stranger = ViewerFacts(ViewerKind.GUARDIAN, acts_for_patient=False)
    for decision in (
        decide_profile_read(stranger, consent_for("guardian")),
        decide_profile_write(stranger, consent_for("guardian"), "allergy"),
    ):
        assert (decision.status, decision.reason) == (403, "not_their_record")
