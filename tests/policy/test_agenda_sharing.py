"""Who may read or add to a patient's shared agenda: the record's authorisation and the
patient's sharing choice, both; and the times of a professional's new appointment."""

from __future__ import annotations

import datetime as dt

import pytest

from mss.policy.agenda import (
    AgendaAccess,
    AgendaShareFacts,
    AgendaSharing,
    decide_agenda_access,
    decide_agenda_sharing_change,
    decide_professional_appointment,
)
from mss.policy.consent import ConsentFacts, ViewerFacts, ViewerKind

AUTHORISED, OTHER_AUTHORISED, UNAUTHORISED, BLOCKED, TREATING = (
    "810000000011",
    "810000000021",
    "810000000012",
    "810000000013",
    "810000000014",
)
CONSENT = ConsentFacts(
    authorised=frozenset({AUTHORISED, OTHER_AUTHORISED}),
    blocked=frozenset({BLOCKED}),
    treating_id_nat=TREATING,
)
ALL = AgendaShareFacts(AgendaSharing.AUTHORISED)
CHOSEN = AgendaShareFacts(AgendaSharing.CHOSEN, frozenset({AUTHORISED, UNAUTHORISED}))
NONE = AgendaShareFacts()


def pro(id_nat: str | None) -> ViewerFacts:
    return ViewerFacts(ViewerKind.PROFESSIONAL, id_nat)


# (professional, sharing) -> the refusal reason, or "" when allowed; for reading and writing.
CASES = [
    (AUTHORISED, ALL, ""),
    (OTHER_AUTHORISED, ALL, ""),
    (TREATING, ALL, ""),
    (UNAUTHORISED, ALL, "not_authorised"),
    (BLOCKED, ALL, "blocked"),
    (AUTHORISED, CHOSEN, ""),
    (OTHER_AUTHORISED, CHOSEN, "agenda_not_shared_with_you"),
    (TREATING, CHOSEN, "agenda_not_shared_with_you"),
    (UNAUTHORISED, CHOSEN, "not_authorised"),  # chosen, but not authorised on the record
    (AUTHORISED, NONE, "agenda_not_shared"),
    (TREATING, NONE, "agenda_not_shared"),
    (BLOCKED, CHOSEN, "blocked"),
]


@pytest.mark.parametrize("access", list(AgendaAccess))
@pytest.mark.parametrize(("id_nat", "share", "refusal"), CASES)
def test_access_needs_authorisation_and_sharing(
    id_nat: str, share: AgendaShareFacts, refusal: str, access: AgendaAccess
) -> None:
    decision = decide_agenda_access(pro(id_nat), CONSENT, share, access)
    assert decision.allowed is (refusal == "")
    if refusal:
        assert (decision.reason, decision.status) == (refusal, 403)
        assert decision.sentence and decision.sentence_fr


def test_the_default_is_shared_with_nobody() -> None:
    assert AgendaShareFacts().sharing is AgendaSharing.NONE


def test_the_sentence_names_what_was_attempted() -> None:
    read = decide_agenda_access(pro(UNAUTHORISED), CONSENT, ALL, AgendaAccess.READ)
    write = decide_agenda_access(pro(UNAUTHORISED), CONSENT, ALL, AgendaAccess.WRITE)
    assert "read" in read.sentence and "voir" in read.sentence_fr
    assert "add to" in write.sentence and "compléter" in write.sentence_fr


def test_a_blocked_treating_doctor_is_refused() -> None:
    consent = ConsentFacts(blocked=frozenset({TREATING}), treating_id_nat=TREATING)
    decision = decide_agenda_access(pro(TREATING), consent, ALL, AgendaAccess.READ)
    assert decision.reason == "blocked"


def test_no_break_glass_into_an_agenda() -> None:
    viewer = ViewerFacts(
        ViewerKind.PROFESSIONAL, UNAUTHORISED, break_glass_reason="Patient inconscient aux urgences"
    )
    assert decide_agenda_access(viewer, CONSENT, ALL, AgendaAccess.READ).reason == "not_authorised"


def test_closed_account_and_non_professionals() -> None:
    closed = AgendaShareFacts(AgendaSharing.AUTHORISED, account_active=False)
    decision = decide_agenda_access(pro(AUTHORISED), CONSENT, closed, AgendaAccess.READ)
    assert (decision.reason, decision.status) == ("no_agenda", 404)
    for viewer in (pro(None), ViewerFacts(ViewerKind.PATIENT), ViewerFacts(ViewerKind.GUARDIAN)):
        refused = decide_agenda_access(viewer, CONSENT, ALL, AgendaAccess.READ)
        assert refused.reason == "not_a_professional"


def test_the_sharing_choice_is_the_patients_or_a_guardians() -> None:
    assert decide_agenda_sharing_change(ViewerFacts(ViewerKind.PATIENT))
    assert decide_agenda_sharing_change(ViewerFacts(ViewerKind.GUARDIAN))
    not_theirs = decide_agenda_sharing_change(
        ViewerFacts(ViewerKind.GUARDIAN, acts_for_patient=False)
    )
    assert (not_theirs.allowed, not_theirs.reason) == (False, "not_their_record")
    professional = decide_agenda_sharing_change(pro(AUTHORISED))
    assert (professional.allowed, professional.reason) == (False, "patient_only")


NOW = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("start", "end", "refusal"),
    [
        (NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=1, hours=1), ""),
        (NOW - dt.timedelta(minutes=30), NOW + dt.timedelta(minutes=30), ""),  # under way
        (NOW + dt.timedelta(hours=2), NOW + dt.timedelta(hours=1), "end_before_start"),
        (NOW + dt.timedelta(hours=1), NOW + dt.timedelta(hours=1), "end_before_start"),
        (NOW - dt.timedelta(hours=2), NOW - dt.timedelta(hours=1), "in_the_past"),
        (NOW + dt.timedelta(hours=1), NOW + dt.timedelta(hours=26), "too_long"),
    ],
)
def test_a_professionals_appointment_times(
    start: dt.datetime, end: dt.datetime, refusal: str
) -> None:
    decision = decide_professional_appointment(start, end, NOW)
    assert decision.allowed is (refusal == "")
    if refusal:
        assert (decision.reason, decision.status) == (refusal, 422)
