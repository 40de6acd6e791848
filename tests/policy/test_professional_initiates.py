"""The professional-initiates rule as pure decisions (the gateway and portal share them)."""

from __future__ import annotations

from mss.conversations import ConversationState
from mss.directory.models import MailboxKind, PatientState
from mss.policy import (
    ConversationAction,
    ConversationFacts,
    MailboxFacts,
    MessageFacts,
    RecipientFacts,
    decide_conversation,
    decide_recipient,
)

DOCTOR = MailboxFacts(1, "jean.dupont@mss.localhost", MailboxKind.PER)
OTHER_DOCTOR = MailboxFacts(2, "anne.martin@mss.localhost", MailboxKind.PER)
PHARMACY = MailboxFacts(3, "pharmacie@mss.localhost", MailboxKind.ORG, pharmacy=True)
SERVICE = MailboxFacts(4, "cardiologie@mss.localhost", MailboxKind.ORG)
PATIENT = MailboxFacts(
    10, "123456789012345@patient.mss.localhost", MailboxKind.PAT, patient_state=PatientState.ACTIVE
)
OTHER_PATIENT = MailboxFacts(
    11, "223456789012345@patient.mss.localhost", MailboxKind.PAT, patient_state=PatientState.ACTIVE
)

OPEN = ConversationFacts(
    100, PATIENT.id, DOCTOR.id, ConversationState.OPEN, frozenset({"<m1@hub>"})
)
CLOSED = ConversationFacts(
    101, PATIENT.id, DOCTOR.id, ConversationState.CLOSED, frozenset({"<m0@hub>"})
)
WITH_OTHER = ConversationFacts(
    102, PATIENT.id, OTHER_DOCTOR.id, ConversationState.OPEN, frozenset({"<m2@hub>"})
)


def reply(to: str, subject: str = "Re: résultats") -> MessageFacts:
    return MessageFacts((PATIENT.address,), subject, in_reply_to=(to,), references=(to,))


def local(mailbox: MailboxFacts) -> RecipientFacts:
    return RecipientFacts(mailbox.address, True, mailbox)


def test_patient_reply_inside_open_conversation_is_accepted() -> None:
    outcome = decide_conversation(PATIENT, DOCTOR, reply("<m1@hub>"), [OPEN])
    assert outcome.decision.allowed
    assert (outcome.action, outcome.conversation_id) == (ConversationAction.CONTINUE, OPEN.id)


def test_patient_new_message_is_refused_at_rcpt() -> None:
    decision = decide_recipient(PATIENT, local(DOCTOR), [])
    assert (decision.allowed, decision.smtp_code, decision.enhanced_status) == (False, 550, "5.7.1")
    assert "cannot start a conversation" in decision.sentence
    assert "seul le professionnel" in decision.sentence_fr


def test_patient_message_without_references_is_refused_at_data() -> None:
    outcome = decide_conversation(
        PATIENT, DOCTOR, MessageFacts((PATIENT.address,), "Bonjour"), [OPEN]
    )
    assert not outcome.decision.allowed
    assert "may only reply" in outcome.decision.sentence


def test_patient_reply_to_another_professional_is_refused() -> None:
    outcome = decide_conversation(PATIENT, DOCTOR, reply("<m2@hub>"), [OPEN, WITH_OTHER])
    assert not outcome.decision.allowed
    assert "another professional" in outcome.decision.sentence


def test_patient_reply_after_fin_is_refused() -> None:
    assert (
        "closed by the professional" in decide_recipient(PATIENT, local(DOCTOR), [CLOSED]).sentence
    )
    outcome = decide_conversation(PATIENT, DOCTOR, reply("<m0@hub>"), [CLOSED])
    assert not outcome.decision.allowed
    assert outcome.decision.smtp_reply.startswith("550 5.7.1 The conversation with")


def test_pharmacy_exception_opens_a_conversation() -> None:
    assert decide_recipient(PATIENT, local(PHARMACY), []).allowed
    outcome = decide_conversation(
        PATIENT, PHARMACY, MessageFacts((PATIENT.address,), "Ordonnance"), []
    )
    assert outcome.decision.allowed and outcome.action is ConversationAction.OPEN


def test_organisation_that_is_not_a_pharmacy_gets_no_exception() -> None:
    assert not decide_recipient(PATIENT, local(SERVICE), []).allowed


def test_patient_cannot_write_to_a_patient_or_outside() -> None:
    assert "another patient" in decide_recipient(PATIENT, local(OTHER_PATIENT), []).sentence
    remote = RecipientFacts("x@other-operator.fr", False, None, domain_trusted=True)
    assert not decide_recipient(PATIENT, remote, []).allowed


def test_professional_opens_continues_and_closes() -> None:
    first = decide_conversation(DOCTOR, PATIENT, MessageFacts((DOCTOR.address,), "Résultats"), [])
    assert first.action is ConversationAction.OPEN
    again = decide_conversation(DOCTOR, PATIENT, MessageFacts((DOCTOR.address,), "Suite"), [OPEN])
    assert (again.action, again.conversation_id) == (ConversationAction.CONTINUE, OPEN.id)
    fin = decide_conversation(DOCTOR, PATIENT, MessageFacts((DOCTOR.address,), "[FIN]"), [OPEN])
    assert (fin.action, fin.conversation_id) == (ConversationAction.CLOSE, OPEN.id)
    header = MessageFacts((DOCTOR.address,), "Merci", mss_mes="FIN")
    assert decide_conversation(DOCTOR, PATIENT, header, [OPEN]).action is ConversationAction.CLOSE


def test_professional_to_professional_has_no_conversation() -> None:
    outcome = decide_conversation(DOCTOR, OTHER_DOCTOR, MessageFacts((DOCTOR.address,), "Avis"), [])
    assert outcome.decision.allowed and outcome.action is ConversationAction.NONE
