"""Each RCPT refusal has its own code and sentence."""

from __future__ import annotations

import datetime as dt

import pytest

from mss.directory.models import MailboxKind, MailboxState, PatientState
from mss.policy import MailboxFacts, RecipientFacts, decide_recipient, decide_recipient_count

DOCTOR = MailboxFacts(1, "jean.dupont@mss.localhost", MailboxKind.PER)


def patient(state: PatientState) -> RecipientFacts:
    box = MailboxFacts(
        10,
        "1@patient.mss.localhost",
        MailboxKind.PAT,
        patient_state=state,
        opposition_deadline=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    )
    return RecipientFacts(box.address, True, box)


@pytest.mark.parametrize(
    ("state", "reply", "fr"),
    [
        (
            PatientState.OPPOSITION_WINDOW,
            (
                "550 5.2.1 The patient account <1@patient.mss.localhost> is not "
                "open yet: the patient may still oppose its creation until 2026-05-01"
            ),
            "jusqu'au 01/05/2026",
        ),
        (
            PatientState.OPPOSED,
            (
                "550 5.7.1 The patient <1@patient.mss.localhost> opposed the creation of "
                "their account"
            ),
            "s'est opposé",
        ),
        (
            PatientState.DEACTIVATED,
            ("550 5.2.1 The patient account <1@patient.mss.localhost> is deactivated"),
            "désactivé",
        ),
        (
            PatientState.CLOSED,
            "550 5.2.1 The patient account <1@patient.mss.localhost> is closed",
            "clôturé",
        ),
    ],
)
def test_patient_account_states(state: PatientState, reply: str, fr: str) -> None:
    decision = decide_recipient(DOCTOR, patient(state))
    assert decision.smtp_reply == reply
    assert fr in decision.sentence_fr


def test_active_patient_accepts_a_professional() -> None:
    assert decide_recipient(DOCTOR, patient(PatientState.ACTIVE)).allowed


def test_unknown_closed_suspended_mailboxes() -> None:
    unknown = decide_recipient(DOCTOR, RecipientFacts("nobody@mss.localhost", True, None))
    assert unknown.smtp_reply == "550 5.1.1 No such mailbox: <nobody@mss.localhost>"
    for state, word in ((MailboxState.CLOSED, "closed"), (MailboxState.SUSPENDED, "suspended")):
        box = MailboxFacts(5, "x@mss.localhost", MailboxKind.PER, state=state)
        decision = decide_recipient(DOCTOR, RecipientFacts(box.address, True, box))
        assert decision.smtp_reply == f"550 5.2.1 Mailbox <x@mss.localhost> is {word}"


def test_remote_domains() -> None:
    outside = decide_recipient(
        DOCTOR, RecipientFacts("a@gmail.com", False, None, domain_trusted=False)
    )
    assert outside.smtp_reply.startswith("550 5.7.1 <a@gmail.com> is outside the trust space")
    assert decide_recipient(
        DOCTOR, RecipientFacts("a@op.fr", False, None, domain_trusted=True)
    ).allowed
    relay = decide_recipient(None, RecipientFacts("a@op.fr", False, None, domain_trusted=True))
    assert relay.smtp_reply == "550 5.7.1 Relaying denied: op.fr is not a domain of this hub"


def test_recipient_count() -> None:
    assert decide_recipient_count(99, 100).allowed
    assert decide_recipient_count(100, 100).smtp_reply.startswith("452 4.5.3")
