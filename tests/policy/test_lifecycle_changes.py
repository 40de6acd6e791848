"""Changes of mind and the hand-over at 16, as pure decisions: each refusal in both languages."""

from __future__ import annotations

import datetime as dt

from mss.policy.decision import Decision
from mss.policy.lifecycle import (
    CONFIRMATION_MISSING,
    IDENTITY_NOT_MATCHED,
    ProofOutcome,
    decide_code_reissue,
    decide_confirmation,
    decide_handover,
    decide_handover_notice,
    decide_identity,
    decide_opposition_withdrawal,
    decide_reopening,
    decide_sent_code,
    french_date,
    handover_day,
    proof_outcome,
    reopening_deadline,
)
from mss.policy.vocabulary import PatientState

S = PatientState
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _refused(decision: Decision, reason: str, english: str, french: str) -> None:
    assert not decision and decision.reason == reason, decision
    assert english in decision.sentence and french in decision.sentence_fr
    assert decision.sentence.isascii()
    assert decision.status in (400, 401, 409) and decision.enhanced_status.startswith("5.")


def test_french_dates() -> None:
    assert french_date(dt.date(2027, 3, 12)) == "12 mars 2027"
    assert french_date(dt.date(2027, 8, 1)) == "1er août 2027"
    assert french_date(dt.date(2026, 12, 31)) == "31 décembre 2026"


def test_an_opposition_can_be_withdrawn_only_when_there_is_one() -> None:
    assert decide_opposition_withdrawal(S.OPPOSED)
    for state in S:
        if state is not S.OPPOSED:
            _refused(
                decide_opposition_withdrawal(state),
                "not_opposed",
                "No opposition",
                "rien à annuler",
            )


def test_a_closed_account_reopens_within_its_retention_only() -> None:
    closed = NOW - dt.timedelta(days=10)
    assert decide_reopening(S.CLOSED, closed, 90, NOW)
    assert reopening_deadline(closed, 90) == closed + dt.timedelta(days=90)
    assert decide_reopening(S.CLOSED, closed, 90, closed + dt.timedelta(days=89, hours=23))
    late = decide_reopening(S.CLOSED, closed, 90, closed + dt.timedelta(days=90))
    _refused(late, "retention_over", "closed on 2026-02-19", "clôturé le 19/02/2026")
    assert "jusqu'au 20/05/2026" in late.sentence_fr and "until 2026-05-20" in late.sentence
    _refused(
        decide_reopening(S.CLOSED, None, 90, NOW), "retention_over", "no longer", "trop longtemps"
    )
    for state in (S.ACTIVE, S.DEACTIVATED, S.OPPOSED, S.CREATED):
        _refused(decide_reopening(state, closed, 90, NOW), "not_closed", "Only a closed", "clôturé")


def test_identity_refusal_does_not_say_which_part_is_wrong() -> None:
    assert decide_identity(True)
    refused = decide_identity(False)
    assert refused is IDENTITY_NOT_MATCHED and refused.status == 401
    assert "INS et cette date de naissance" in refused.sentence_fr


def test_what_a_proof_of_identity_leads_to() -> None:
    closed = NOW - dt.timedelta(days=5)
    decision, outcome = proof_outcome(S.OPPOSED, False, None, 90, NOW)
    assert decision and outcome is ProofOutcome.WITHDRAW_OPPOSITION
    for state, has_password in (
        (S.CREATED, False),
        (S.OPPOSITION_WINDOW, False),
        (S.ACTIVE, False),
    ):
        decision, outcome = proof_outcome(state, has_password, None, 90, NOW)
        assert decision and outcome is ProofOutcome.ACTIVATE
    decision, outcome = proof_outcome(S.CLOSED, True, closed, 90, NOW)
    assert decision and outcome is ProofOutcome.REOPEN
    decision, outcome = proof_outcome(S.CLOSED, True, closed, 3, NOW)
    assert outcome is None
    _refused(decision, "retention_over", "no longer be reopened", "ne peut plus être rouvert")
    decision, outcome = proof_outcome(S.ACTIVE, True, None, 90, NOW)
    assert outcome is None
    _refused(decision, "already_active", "already activated", "connectez-vous")
    decision, outcome = proof_outcome(S.DEACTIVATED, True, None, 90, NOW)
    assert outcome is None and decision.reason == "already_active"


def test_changes_of_mind_are_confirmed() -> None:
    assert decide_confirmation(ProofOutcome.ACTIVATE, confirmed=False)
    for outcome in (ProofOutcome.WITHDRAW_OPPOSITION, ProofOutcome.REOPEN):
        assert decide_confirmation(outcome, confirmed=True)
        refused = decide_confirmation(outcome, confirmed=False)
        assert refused is CONFIRMATION_MISSING and refused.status == 400
        assert "Cochez la case" in refused.sentence_fr


def test_a_sent_code_expires_and_must_match() -> None:
    later = NOW + dt.timedelta(minutes=5)
    assert decide_sent_code(True, later, NOW)
    _refused(decide_sent_code(False, later, NOW), "wrong_code", "not the one", "n'est pas celui")
    _refused(decide_sent_code(True, NOW, NOW), "code_expired", "expired", "a expiré")
    _refused(decide_sent_code(True, None, NOW), "code_expired", "expired", "a expiré")


def test_the_handover_day() -> None:
    assert handover_day(dt.date(2010, 6, 15), 16) == dt.date(2026, 6, 15)
    assert handover_day(dt.date(2008, 2, 29), 16) == dt.date(2024, 2, 29)  # a leap year again
    assert handover_day(dt.date(2008, 2, 29), 17) == dt.date(2025, 3, 1)


def test_handover_on_the_birthday_and_not_before() -> None:
    born = dt.date(2010, 6, 15)
    assert decide_handover(born, True, dt.date(2026, 6, 15), 16)
    assert decide_handover(born, True, dt.date(2026, 9, 1), 16)  # a hub that was off catches up
    _refused(
        decide_handover(born, True, dt.date(2026, 6, 14), 16),
        "not_yet",
        "2026-06-15, at 16",
        "le 15 juin 2026, aux 16 ans",
    )
    assert decide_handover(born, True, dt.date(2028, 6, 15), 18)
    _refused(
        decide_handover(born, False, dt.date(2026, 7, 1), 16),
        "no_guardians",
        "No guardian",
        "Aucun représentant",
    )
    _refused(
        decide_handover(None, True, dt.date(2026, 7, 1), 16), "no_birth_date", "unknown", "inconnue"
    )


def test_guardians_are_told_before_the_handover() -> None:
    born = dt.date(2010, 6, 15)
    assert decide_handover_notice(born, True, dt.date(2026, 5, 16), 16, 30)
    assert decide_handover_notice(born, True, dt.date(2026, 6, 14), 16, 30)
    _refused(
        decide_handover_notice(born, True, dt.date(2026, 5, 15), 16, 30),
        "notice_not_yet",
        "2026-05-16",
        "30 jours avant le 15 juin 2026",
    )
    _refused(
        decide_handover_notice(born, True, dt.date(2026, 6, 15), 16, 30),
        "handover_due",
        "due",
        "due",
    )
    assert decide_handover_notice(born, False, dt.date(2026, 6, 1), 16, 30).reason == "no_guardians"
    assert decide_handover_notice(None, True, dt.date(2026, 6, 1), 16, 30).reason == "no_birth_date"


def test_a_fresh_code_goes_to_an_open_account_without_a_password() -> None:
    for state in (S.CREATED, S.OPPOSITION_WINDOW, S.ACTIVE, S.DEACTIVATED):
        assert decide_code_reissue(state, has_password=False)
    _refused(
        decide_code_reissue(S.ACTIVE, True),
        "already_active",
        "password of their own",
        "propre mot de passe",
    )
    _refused(decide_code_reissue(S.OPPOSED, False), "opposed", "opposed", "opposé")
    _refused(decide_code_reissue(S.CLOSED, False), "closed", "closed", "clôturé")
