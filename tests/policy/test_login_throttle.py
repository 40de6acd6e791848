"""The one login throttle as a pure decision: lock per (account, source) and per source, back-off
per account."""

from __future__ import annotations

import datetime as dt

from mss.policy.login import (
    ACCOUNT_LOCKED,
    ALLOWED,
    BACK_OFF,
    SOURCE_LOCKED,
    WRONG_CREDENTIALS,
    FailureSeries,
    LoginFailures,
    LoginRules,
    decide_after_failure,
    decide_login_attempt,
)
from mss.policy.notices import decide_login_lock_notice

RULES = LoginRules()  # 5 per pair, 30 per source, 15 minutes, 1 free, 2 s doubling to 60 s
NOW = dt.datetime(2026, 3, 2, 13, 0, tzinfo=dt.UTC)


def ago(**delta: float) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def series(failures: int, **delta: float) -> FailureSeries:
    return FailureSeries(failures, ago(**delta))


def test_nothing_recorded_is_allowed() -> None:
    decision = decide_login_attempt(LoginFailures(), RULES, NOW)
    assert decision.allowed and decision.reason == ALLOWED


def test_the_pair_locks_after_five_failures_for_fifteen_minutes_in_both_languages() -> None:
    failures = LoginFailures(account=series(5, minutes=1), pair=series(5, minutes=1))
    decision = decide_login_attempt(failures, RULES, NOW)
    assert not decision.allowed and decision.reason == ACCOUNT_LOCKED and decision.locked
    assert decision.retry_at == ago(minutes=1) + dt.timedelta(minutes=15)
    assert decision.smtp_reply == (
        "535 5.7.8 Too many failed logins: this account is locked from your address "
        "for 15 minutes, until 13:14 UTC; try again then"
    )
    assert decision.sentence.isascii()
    assert "bloquée pendant 15 minutes, jusqu'à 14 h 14 (heure de Paris)" in decision.sentence_fr


def test_a_lock_ends_and_its_series_is_forgotten() -> None:
    failures = LoginFailures(
        account=series(5, minutes=15), pair=series(5, minutes=15), source=series(5, minutes=15)
    )
    assert decide_login_attempt(failures, RULES, NOW).allowed
    assert not failures.current(RULES, NOW).any


def test_the_source_locks_every_account_after_thirty_failures() -> None:
    failures = LoginFailures(source=series(30, minutes=2))
    decision = decide_login_attempt(failures, RULES, NOW)
    assert decision.reason == SOURCE_LOCKED and decision.smtp_code == 535
    assert (
        "depuis votre adresse" in decision.sentence_fr and "from your address" in decision.sentence
    )


def test_the_account_alone_only_waits_never_locks() -> None:
    """Failures from other addresses: the owner's address gets a delay, capped, never a lock."""
    for failures, wait in ((1, 0), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (500, 60)):
        decision = decide_login_attempt(
            LoginFailures(account=FailureSeries(failures, NOW)), RULES, NOW
        )
        if wait == 0:
            assert decision.allowed
            continue
        assert decision.reason == BACK_OFF and decision.smtp_reply.startswith("454 4.7.0")
        assert decision.wait_seconds(NOW) == wait
        assert f"attendez {wait} secondes" in decision.sentence_fr
        assert f"wait {wait} seconds" in decision.sentence


def test_the_wait_counts_from_the_last_failure() -> None:
    assert (
        decide_login_attempt(LoginFailures(account=series(4, seconds=3)), RULES, NOW).wait_seconds(
            NOW
        )
        == 5
    )
    assert decide_login_attempt(LoginFailures(account=series(4, seconds=8)), RULES, NOW).allowed


def test_after_a_failure_the_answer_tells_how_many_tries_are_left() -> None:
    after = decide_after_failure(
        LoginFailures(account=FailureSeries(1, NOW), pair=FailureSeries(1, NOW)), RULES, NOW
    )
    assert after.reason == WRONG_CREDENTIALS and not after.lock_began
    assert after.sentence_fr == "Il vous reste 4 essais avant un blocage temporaire de 15 minutes."
    after = decide_after_failure(
        LoginFailures(account=FailureSeries(2, NOW), pair=FailureSeries(2, NOW)), RULES, NOW
    )
    assert "attendez 2 secondes" in after.sentence_fr


def test_the_failure_that_reaches_the_threshold_begins_the_lock_once() -> None:
    fifth = decide_after_failure(
        LoginFailures(account=FailureSeries(5, NOW), pair=FailureSeries(5, NOW)), RULES, NOW
    )
    assert fifth.reason == ACCOUNT_LOCKED and fifth.lock_began
    assert fifth.retry_at == NOW + dt.timedelta(minutes=15)
    sixth = decide_after_failure(
        LoginFailures(account=FailureSeries(6, NOW), pair=FailureSeries(6, NOW)), RULES, NOW
    )
    assert (
        sixth.locked and not sixth.lock_began
    )  # a racing attempt in another process: told, not re-notified


def test_only_a_patient_account_lock_is_notified() -> None:
    fifth = decide_after_failure(LoginFailures(pair=FailureSeries(5, NOW)), RULES, NOW)
    assert decide_login_lock_notice(fifth, patient_account=True) == "login_locked"
    assert decide_login_lock_notice(fifth, patient_account=False) is None
    source = decide_after_failure(LoginFailures(source=FailureSeries(30, NOW)), RULES, NOW)
    assert source.locked and decide_login_lock_notice(source, patient_account=True) is None


def test_settings_can_switch_the_back_off_off() -> None:
    rules = LoginRules(back_off_seconds=0)
    assert decide_login_attempt(LoginFailures(account=FailureSeries(4, NOW)), rules, NOW).allowed
