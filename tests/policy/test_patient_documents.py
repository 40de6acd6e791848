"""A profile summary the patient sends by their own choice: allowed, and opening nothing; a
free-text new conversation is still refused (the professional-initiates rule)."""

from __future__ import annotations

import pytest

from mss.policy import ConversationAction, MessageFacts, decide_conversation, decide_recipient
from mss.policy.patient_documents import (
    PROFILE_SUMMARY,
    PatientDocumentFacts,
    decide_one_off_recipient,
    decide_patient_document,
)
from tests.policy.test_professional_initiates import (
    DOCTOR,
    OTHER_PATIENT,
    PATIENT,
    PHARMACY,
    SERVICE,
    local,
)

SUMMARY = PatientDocumentFacts(PROFILE_SUMMARY, built_by_portal=True, pdf_attachments=1)
NEW = MessageFacts((PATIENT.address,), "Mon résumé de profil médical")


def test_summary_to_a_professional_is_allowed_and_opens_nothing() -> None:
    assert decide_recipient(PATIENT, local(DOCTOR), [], one_off=PROFILE_SUMMARY).allowed
    outcome = decide_conversation(PATIENT, DOCTOR, NEW, [], SUMMARY)
    assert outcome.decision.allowed
    assert (outcome.action, outcome.conversation_id) == (ConversationAction.NONE, None)


def test_free_text_new_conversation_is_still_refused() -> None:
    at_rcpt = decide_recipient(PATIENT, local(DOCTOR), [])
    assert (at_rcpt.allowed, at_rcpt.enhanced_status) == (False, "5.7.1")
    assert "cannot start a conversation" in at_rcpt.sentence
    at_data = decide_conversation(PATIENT, DOCTOR, NEW, [])
    assert not at_data.decision.allowed
    assert "only reply" in at_data.decision.sentence


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (PatientDocumentFacts(PROFILE_SUMMARY, False, 1), "not_from_portal"),
        (PatientDocumentFacts(PROFILE_SUMMARY, True, 0), "not_a_summary"),
        (PatientDocumentFacts(PROFILE_SUMMARY, True, 2), "not_a_summary"),
        (PatientDocumentFacts(PROFILE_SUMMARY, True, 1, other_attachments=1), "not_a_summary"),
        (PatientDocumentFacts("letter", True, 1), "unknown_document"),
    ],
)
def test_anything_but_the_portals_summary_is_refused(
    document: PatientDocumentFacts, reason: str
) -> None:
    decision = decide_patient_document(DOCTOR, document)
    assert (decision.allowed, decision.reason) == (False, reason)
    assert decision.smtp_code == 550 and decision.sentence_fr
    assert not decide_conversation(PATIENT, DOCTOR, NEW, [], document).decision.allowed


@pytest.mark.parametrize("mailbox", [SERVICE, PHARMACY])
def test_only_a_professionals_personal_mailbox(mailbox: object) -> None:
    decision = decide_one_off_recipient(mailbox, PROFILE_SUMMARY)  # type: ignore[arg-type]
    assert (decision.allowed, decision.reason) == (False, "not_a_professional")


def test_never_to_another_patient() -> None:
    decision = decide_recipient(PATIENT, local(OTHER_PATIENT), [], one_off=PROFILE_SUMMARY)
    assert not decision.allowed and "another patient" in decision.sentence
    outcome = decide_conversation(PATIENT, OTHER_PATIENT, NEW, [], SUMMARY)
    assert not outcome.decision.allowed and "another patient" in outcome.decision.sentence
