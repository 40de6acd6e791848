"""A patient account's transitions as pure decisions: each refusal, in English and in French."""

from __future__ import annotations

import datetime as dt

import pytest

from mss.policy.decision import Decision
from mss.policy.lifecycle import (
    WRONG_ACTIVATION_CODE,
    decide_activation,
    decide_auto_activation,
    decide_closing,
    decide_code_issue,
    decide_deactivation,
    decide_new_password,
    decide_opposition,
    decide_reactivation,
    needs_activation_code,
)
from mss.policy.vocabulary import PatientState

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
S = PatientState


def _refused(decision: Decision, reason: str, english: str, french: str) -> None:
    assert not decision and decision.reason == reason
    assert english in decision.sentence and french in decision.sentence_fr
    assert decision.sentence.isascii()
    assert decision.status in (401, 409, 422) and decision.enhanced_status.startswith("5.")


def test_a_code_is_issued_once_to_a_new_account() -> None:
    assert decide_code_issue(S.CREATED, False, False, "1")
    assert decide_code_issue(S.OPPOSITION_WINDOW, False, False, "1")
    assert needs_activation_code(S.CREATED, has_code=False, has_password=False)
    for state, code, password in ((S.CREATED, True, False), (S.ACTIVE, False, False)):
        _refused(
            decide_code_issue(state, code, password, "2850175123456"),
            "code_already_issued",
            "patient 2850175123456 already has",
            "a déjà un code d'activation",
        )


@pytest.mark.parametrize(
    ("password", "english", "french"),
    [
        ("court1", "at least 12", "au moins 12"),
        ("123456789012345", "contain letters", "contenir des lettres"),
        ("seulementdeslettres", "digit, space or symbol", "chiffre, une espace ou un symbole"),
        ("x2850175123456yy", "must not contain the INS", "votre numéro INS"),
    ],
)
def test_a_weak_password_says_why(password: str, english: str, french: str) -> None:
    _refused(decide_new_password(password, "2850175123456"), "weak_password", english, french)


def test_a_good_password() -> None:
    assert decide_new_password("mon chat dort 3 fois", "2850175123456")


def test_activation_by_state() -> None:
    assert decide_activation(S.OPPOSITION_WINDOW, has_password=False)
    assert decide_activation(S.ACTIVE, has_password=False)  # after the automatic activation
    _refused(decide_activation(S.OPPOSED, False), "opposed", "opposed", "opposé")
    _refused(decide_activation(S.CLOSED, False), "closed", "was closed", "clôturé")
    _refused(decide_activation(S.DEACTIVATED, False), "already_active", "already", "déjà activé")
    _refused(decide_activation(S.ACTIVE, True), "already_active", "already", "déjà activé")


def test_opposition_only_before_the_deadline() -> None:
    deadline = NOW + dt.timedelta(days=1)
    assert decide_opposition(S.OPPOSITION_WINDOW, deadline, NOW)
    _refused(
        decide_opposition(S.OPPOSITION_WINDOW, deadline, deadline),
        "opposition_over",
        f"ended on {deadline:%Y-%m-%d}",
        f"a pris fin le {deadline:%d/%m/%Y}",
    )
    _refused(
        decide_opposition(S.ACTIVE, None, NOW), "opposition_over", "unknown date", "date inconnue"
    )


def test_auto_activation_once_the_window_ended() -> None:
    assert decide_auto_activation(S.OPPOSITION_WINDOW, NOW, NOW)
    assert not decide_auto_activation(S.OPPOSITION_WINDOW, NOW + dt.timedelta(seconds=1), NOW)
    assert not decide_auto_activation(S.OPPOSITION_WINDOW, None, NOW)
    assert not decide_auto_activation(S.OPPOSED, NOW, NOW)


def test_deactivate_reactivate_close() -> None:
    assert decide_deactivation(S.ACTIVE) and decide_reactivation(S.DEACTIVATED)
    assert decide_closing(S.ACTIVE) and decide_closing(S.DEACTIVATED)
    _refused(
        decide_deactivation(S.DEACTIVATED), "not_active", "Only an active", "Seul un compte actif"
    )
    _refused(
        decide_reactivation(S.ACTIVE),
        "not_deactivated",
        "Only a deactivated",
        "Seul un compte désactivé",
    )
    _refused(decide_closing(S.OPPOSED), "not_open", "Only an open", "Seul un compte ouvert")


def test_a_wrong_code_is_a_401() -> None:
    assert WRONG_ACTIVATION_CODE.status == 401 and WRONG_ACTIVATION_CODE.smtp_code == 535
