"""Sender ownership, signatures, sizes and sessions."""

from __future__ import annotations

import pytest

from mss.directory.models import MailboxKind, MailboxState, PatientState
from mss.policy import (
    MailboxFacts,
    PeerCertificateFacts,
    decide_certificate_login,
    decide_from_header,
    decide_line_endings,
    decide_password_login,
    decide_relay_client,
    decide_relay_sender,
    decide_signature,
    decide_size,
    decide_submission_sender,
    refuse,
)

DOCTOR = MailboxFacts(1, "jean.dupont@mss.localhost", MailboxKind.PER)
APP = MailboxFacts(2, "convocations@mss.localhost", MailboxKind.APP)
PATIENT = MailboxFacts(
    10, "1@patient.mss.localhost", MailboxKind.PAT, patient_state=PatientState.ACTIVE
)


def test_sender_must_own_mail_from_and_from_header() -> None:
    assert decide_submission_sender(DOCTOR, "Jean.Dupont@mss.localhost").allowed
    assert decide_submission_sender(None, "x@y").smtp_reply.startswith("530 5.7.0")
    stolen = decide_submission_sender(DOCTOR, "anne@mss.localhost")
    assert stolen.smtp_reply.startswith(
        "553 5.7.1 Sender address <anne@mss.localhost> is not owned"
    )
    assert decide_from_header(DOCTOR, ["jean.dupont@mss.localhost"]).allowed
    assert not decide_from_header(DOCTOR, ["anne@mss.localhost"]).allowed
    assert not decide_from_header(
        DOCTOR, ["jean.dupont@mss.localhost", "anne@mss.localhost"]
    ).allowed
    closed = MailboxFacts(1, DOCTOR.address, MailboxKind.PER, state=MailboxState.CLOSED)
    assert not decide_submission_sender(closed, DOCTOR.address).allowed


def test_relay_sender_belongs_to_the_operator() -> None:
    assert decide_relay_sender(["op.fr"], "a@op.fr", ["mss.localhost"]).allowed
    assert not decide_relay_sender(["op.fr"], "a@mss.localhost", ["mss.localhost"]).allowed
    assert not decide_relay_sender(["op.fr"], "a@evil.fr", ["mss.localhost"]).allowed


@pytest.mark.parametrize(
    ("status", "enhanced", "words"),
    [
        ("tampered", "5.7.7", "modified after it was signed"),
        ("unknown_ca", "5.7.5", "trusted authority"),
        ("expired", "5.7.5", "expired"),
        ("revoked", "5.7.5", "revoked"),
        ("address_mismatch", "5.7.1", "another address"),
        ("bad_eku", "5.7.5", "emailProtection"),
    ],
)
def test_broken_signatures_are_refused_whoever_receives(
    status: str, enhanced: str, words: str
) -> None:
    decision = decide_signature(DOCTOR, [DOCTOR], status)
    assert (decision.smtp_code, decision.enhanced_status) == (554, enhanced)
    assert words in decision.sentence


def test_professional_to_patient_requires_a_signature() -> None:
    unsigned = decide_signature(APP, [PATIENT], "none")
    assert unsigned.smtp_reply.startswith("554 5.7.1 A message from a professional to a patient")
    assert decide_signature(APP, [PATIENT], "valid").allowed
    assert decide_signature(DOCTOR, [DOCTOR], "none").allowed


def test_sizes() -> None:
    assert decide_size(10, max_size=100).allowed
    assert decide_size(101, max_size=100).smtp_reply.startswith("552 5.3.4 Message too big")
    assert not decide_size(60, max_size=100, to_patient=True, max_size_to_patient=50).allowed
    assert decide_size(60, max_size=100, to_patient=False, max_size_to_patient=50).allowed
    assert decide_line_endings(True).smtp_reply.startswith("550 5.6.0")


def test_logins() -> None:
    assert decide_password_login(DOCTOR, True).allowed
    assert decide_password_login(DOCTOR, False).smtp_reply.startswith("535 5.7.8")
    assert "portal" in decide_password_login(PATIENT, True).sentence
    assert decide_certificate_login(APP).allowed
    assert not decide_certificate_login(DOCTOR).allowed


def test_relay_client() -> None:
    cert = PeerCertificateFacts("CN=mx.op.fr,O=Op", "ab" * 32, ("op.fr",))
    assert decide_relay_client(None, dn_trusted=False, domain_trusted=False).smtp_code == 530
    assert decide_relay_client(cert, dn_trusted=False, domain_trusted=True).allowed
    assert not decide_relay_client(cert, dn_trusted=False, domain_trusted=False).allowed


def test_refuse_needs_an_error_code() -> None:
    with pytest.raises(ValueError):
        refuse(250, "2.0.0", "no", "non")
