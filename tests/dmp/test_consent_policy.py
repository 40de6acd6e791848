"""The consent engine alone (pure functions): the whole role x action table, zero leaks."""

from __future__ import annotations

import pytest

from mss.policy.consent import (
    BREAK_GLASS_MIN_LENGTH,
    ConsentFacts,
    DmpAction,
    DocumentFacts,
    ViewerFacts,
    ViewerKind,
    can_see,
    decide_break_glass_reason,
    decide_consent_change,
    decide_dmp_action,
)
from tests.dmp.matrix import (
    DEPOSIT,
    DOCUMENTS,
    FLAGS,
    ID_NATS,
    LIST_REFUSED,
    MASK,
    REASON,
    REPLACE,
    ROLES,
    VISIBLE,
    read_status,
)

AUTHOR = ID_NATS["author"]


def consent_for(role: str) -> ConsentFacts:
    return ConsentFacts(
        authorised=frozenset({ID_NATS["authorised"]}),
        blocked=frozenset({ID_NATS["blocked"]}),
        treating_id_nat=ID_NATS["treating"],
        break_glass_opposed=role == "break_glass_opposed",
    )


def viewer_for(role: str) -> ViewerFacts:
    if role == "patient":
        return ViewerFacts(ViewerKind.PATIENT)
    if role == "guardian":
        return ViewerFacts(ViewerKind.GUARDIAN)
    reason = REASON if role.startswith("break_glass") else None
    return ViewerFacts(ViewerKind.PROFESSIONAL, ID_NATS[role], break_glass_reason=reason)


def document(name: str) -> DocumentFacts:
    return DocumentFacts(author_id_nat=AUTHOR, **FLAGS[name])  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ROLES)
def test_list(role: str) -> None:
    decision = decide_dmp_action(viewer_for(role), consent_for(role), DmpAction.LIST)
    assert decision.status == LIST_REFUSED.get(role, 200), decision
    if decision.allowed:
        seen = {d for d in DOCUMENTS if can_see(viewer_for(role), consent_for(role), document(d))}
        assert seen == VISIBLE[role]
        assert decision.break_glass == (role == "break_glass")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", DOCUMENTS)
def test_read(role: str, name: str) -> None:
    decision = decide_dmp_action(
        viewer_for(role), consent_for(role), DmpAction.READ, document(name)
    )
    assert decision.status == read_status(role, name), decision
    if decision.status == 404:  # hidden answers exactly like absent
        assert (decision.sentence, decision.reason) == (
            "No such document in this patient's record",
            "not_found",
        )


@pytest.mark.parametrize("role", ROLES)
def test_deposit_mask_replace(role: str) -> None:
    viewer, consent = viewer_for(role), consent_for(role)
    assert decide_dmp_action(viewer, consent, DmpAction.DEPOSIT).status == DEPOSIT[role]
    assert (
        decide_dmp_action(viewer, consent, DmpAction.MASK, document("plain")).status == MASK[role]
    )
    assert decide_dmp_action(viewer, consent, DmpAction.UNMASK, document("masked")).status == (
        MASK[role] if role == "patient" or role == "guardian" else 403
    )
    assert (
        decide_dmp_action(viewer, consent, DmpAction.REPLACE, document("plain")).status
        == REPLACE[role]
    )


def test_author_replaces_and_deletes_even_unauthorised_but_cannot_read() -> None:
    author = ViewerFacts(ViewerKind.PROFESSIONAL, AUTHOR)
    consent = consent_for("author")
    for action in (DmpAction.REPLACE, DmpAction.DELETE):
        assert decide_dmp_action(author, consent, action, document("masked")).allowed
    assert decide_dmp_action(author, consent, DmpAction.READ, document("plain")).status == 403
    colleague = ViewerFacts(ViewerKind.PROFESSIONAL, "810000000099", institution="750000001")
    same_place = DocumentFacts(author_id_nat=AUTHOR, author_institution="750000001")
    assert decide_dmp_action(colleague, consent, DmpAction.REPLACE, same_place).allowed


def test_authorised_author_sees_own_masked_document() -> None:
    consent = ConsentFacts(authorised=frozenset({AUTHOR}))
    author = ViewerFacts(ViewerKind.PROFESSIONAL, AUTHOR)
    assert decide_dmp_action(author, consent, DmpAction.READ, document("masked")).allowed
    other = ViewerFacts(ViewerKind.PROFESSIONAL, "810000000099")
    assert (
        decide_dmp_action(
            other,
            ConsentFacts(authorised=frozenset({"810000000099"})),
            DmpAction.READ,
            document("masked"),
        ).status
        == 404
    )


def test_blocked_treating_doctor_loses_everything() -> None:
    doctor = ID_NATS["treating"]
    consent = ConsentFacts(treating_id_nat=doctor, blocked=frozenset({doctor}))
    viewer = ViewerFacts(ViewerKind.PROFESSIONAL, doctor)
    assert decide_dmp_action(viewer, consent, DmpAction.LIST).reason == "blocked"
    assert decide_dmp_action(viewer, consent, DmpAction.DEPOSIT).reason == "blocked"


def test_blocked_professional_cannot_break_glass() -> None:
    viewer = ViewerFacts(ViewerKind.PROFESSIONAL, ID_NATS["blocked"], break_glass_reason=REASON)
    assert decide_dmp_action(viewer, consent_for("blocked"), DmpAction.LIST).reason == "blocked"


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (None, 403),
        ("", 422),
        ("   ", 422),
        ("urgence", 422),
        ("x" * (BREAK_GLASS_MIN_LENGTH - 1), 422),
        ("motif\x00caché aux urgences", 422),
        ("x" * 501, 422),
        (REASON, 200),
    ],
)
def test_break_glass_needs_a_sensible_reason(reason: str | None, status: int) -> None:
    viewer = ViewerFacts(ViewerKind.PROFESSIONAL, ID_NATS["break_glass"], break_glass_reason=reason)
    decision = decide_dmp_action(viewer, consent_for("break_glass"), DmpAction.LIST)
    assert decision.status == status, decision
    if reason is not None and status == 422:
        assert not decide_break_glass_reason(reason).allowed


def test_authorised_professional_with_a_reason_is_not_a_break_glass() -> None:
    viewer = ViewerFacts(ViewerKind.PROFESSIONAL, ID_NATS["authorised"], break_glass_reason=REASON)
    decision = decide_dmp_action(viewer, consent_for("authorised"), DmpAction.LIST)
    assert decision.allowed and not decision.break_glass


def test_closed_record_and_deleted_documents() -> None:
    closed = ConsentFacts(record_open=False)
    for role in ROLES:
        assert decide_dmp_action(viewer_for(role), closed, DmpAction.LIST).reason == "no_record"
    deleted = DocumentFacts(status="deleted")
    for role in ("patient", "treating"):
        assert (
            decide_dmp_action(viewer_for(role), consent_for(role), DmpAction.READ, deleted).status
            == 404
        )


def test_other_patients_and_strangers() -> None:
    stranger = ViewerFacts(ViewerKind.PATIENT, acts_for_patient=False)
    assert decide_dmp_action(stranger, ConsentFacts(), DmpAction.LIST).status == 403
    assert decide_consent_change(stranger).status == 403
    assert decide_consent_change(ViewerFacts(ViewerKind.GUARDIAN)).allowed
    assert decide_consent_change(viewer_for("treating")).status == 403


def test_reveal_is_a_professional_act() -> None:
    hidden = document("invisible_patient")
    assert decide_dmp_action(
        viewer_for("treating"), consent_for("treating"), DmpAction.REVEAL, hidden
    ).allowed
    assert (
        decide_dmp_action(
            viewer_for("patient"), consent_for("patient"), DmpAction.REVEAL, hidden
        ).status
        == 404
    )  # the patient cannot even know it is there
    assert (
        decide_dmp_action(
            viewer_for("patient"), consent_for("patient"), DmpAction.REVEAL, document("plain")
        ).status
        == 403
    )


def test_sentences_in_both_languages() -> None:
    for role in ROLES:
        decision = decide_dmp_action(viewer_for(role), consent_for(role), DmpAction.LIST)
        assert (
            decision.sentence and decision.sentence_fr and decision.sentence != decision.sentence_fr
        )
