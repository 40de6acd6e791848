"""Whom a patient may authorise, block or name, and what they may withdraw (pure policy)."""

from __future__ import annotations

from mss.policy.patient_dossier import UNKNOWN_PROFESSIONAL, decide_consent_target


def test_authorising_blocking_or_naming_needs_a_professional_of_the_directory() -> None:
    assert decide_consent_target(True, withdrawing=False, recorded=False).allowed
    refusal = decide_consent_target(False, withdrawing=False, recorded=False)
    assert refusal == UNKNOWN_PROFESSIONAL
    assert (refusal.status, refusal.reason) == (422, "unknown_professional")
    assert refusal.sentence_fr.startswith("Ce professionnel n'a pas été trouvé dans l'annuaire")


def test_withdrawing_needs_the_choice_recorded_not_the_directory() -> None:
    # The directory may have dropped the professional since: the choice is still withdrawn.
    assert decide_consent_target(False, withdrawing=True, recorded=True).allowed
    assert decide_consent_target(True, withdrawing=True, recorded=False) == UNKNOWN_PROFESSIONAL
