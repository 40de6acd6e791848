"""The pure rules of the X-MSS headers (Référentiel socle MSSanté #2 §3.8.1-3.8.2), the
``XDM/1.0/DDM`` subject and the delivery statuses' transitions."""

from __future__ import annotations

import pytest

from mss.policy.delivery_status import (
    STATES,
    decide_report,
    decide_status_change,
    report_state,
    states_before,
    status_sentence_fr,
)
from mss.policy.mss_headers import (
    PackageClaims,
    codecda_values,
    ddm_label,
    decide_mss_headers,
    headers_to_write,
)

ONE = ("11488-4",)


def claims(
    codecda: str | None,
    ins: str | None,
    codes: tuple[str, ...] = ONE,
    qualified: bool = True,
    present: bool = True,
) -> PackageClaims:
    return PackageClaims(codecda, ins, codes, qualified, present)


@pytest.mark.parametrize(
    ("codecda", "ins", "codes", "qualified", "present", "code", "reason"),
    [
        (None, None, ONE, True, True, None, "ok"),
        ("11488-4", "O", ONE, True, True, None, "ok"),
        (" 11488-4 , 11488-4", None, ONE, True, True, None, "ok"),  # spaces, repeats
        ("34112-3,PRESC-BIO", None, ("PRESC-BIO", "34112-3"), True, True, None, "ok"),
        ("18748-4", None, ONE, True, True, 906, "mss_codecda_mismatch"),
        ("11488-4,18748-4", None, ONE, True, True, 906, "mss_codecda_mismatch"),
        ("11488-4", None, (), False, False, 906, "mss_codecda_mismatch"),  # no CDA at all
        ("", None, ONE, True, True, 906, "mss_codecda_malformed"),
        ("11488-4;x", None, ONE, True, True, 906, "mss_codecda_malformed"),
        (None, "N", ONE, False, True, None, "ok"),
        (None, "N", ONE, True, True, 906, "mss_ins_mismatch"),
        (None, "O", ONE, False, True, 905, "mss_ins_mismatch"),  # INS without its traits
        (None, "O", ONE, False, False, 903, "mss_ins_mismatch"),  # no INS at all
        (None, "oui", ONE, True, True, 906, "mss_ins_malformed"),
    ],
)
def test_the_headers_against_the_package(
    codecda: str | None,
    ins: str | None,
    codes: tuple[str, ...],
    qualified: bool,
    present: bool,
    code: int | None,
    reason: str,
) -> None:
    decision = decide_mss_headers(claims(codecda, ins, codes, qualified, present))
    assert decision.allowed is (code is None)
    assert decision.code == code and decision.reason == reason
    if code is not None:
        assert decision.sentence_fr.startswith("L'en-tête X-MSS-")


def test_codecda_values_and_what_the_hub_writes() -> None:
    assert codecda_values("34112-3,PRESC-BIO, 15508-5") == ("34112-3", "PRESC-BIO", "15508-5")
    assert headers_to_write(["11488-4", "11488-4", "18748-4"], True) == [
        ("X-MSS-CODECDA", "11488-4,18748-4"),
        ("X-MSS-INS", "O"),
    ]
    assert headers_to_write(["11488-4"], False) == [
        ("X-MSS-CODECDA", "11488-4"),
        ("X-MSS-INS", "N"),
    ]
    assert headers_to_write([], True) == []  # no CDA: neither header (§3.8.1, §3.8.2)


def test_the_ddm_subject() -> None:
    label = "ECHOGRAPHIE ABDOMINOPELVIENNE CORSE FIGATELLIX 12/10/1988"
    assert ddm_label(f"XDM/1.0/DDM+{label}") == label
    assert ddm_label(f"  xdm/1.0/ddm+{label} ") == label
    assert ddm_label("XDM/1.0/DDM+") is None
    assert ddm_label(f"Re: XDM/1.0/DDM+{label}") is None
    assert ddm_label("Résultats") is None


def test_a_status_only_moves_forward_and_a_failure_is_final() -> None:
    assert decide_status_change(None, "delivered").allowed
    assert decide_status_change("delivered", "displayed").allowed
    assert decide_status_change("delivered", "failed").allowed
    assert decide_status_change("relayed", "delivered").allowed
    assert decide_status_change("filed", "displayed").allowed
    stale = decide_status_change("displayed", "delivered")
    assert not stale.allowed and stale.reason == "stale"
    assert "vient avant" in stale.sentence_fr
    final = decide_status_change("failed", "displayed")
    assert not final.allowed and final.reason == "final"
    assert not decide_status_change("failed", "failed").allowed
    assert decide_status_change(None, "lu").reason == "unknown_state"
    assert states_before("displayed") == ("relayed", "delivered", "dispatched", "filed")
    assert states_before("failed") == tuple(s for s in STATES if s != "failed")
    assert states_before("relayed") == ()


def test_the_patient_words_of_a_status() -> None:
    assert status_sentence_fr("delivered") == "Distribué dans la boîte du destinataire"
    assert status_sentence_fr("displayed") == "Ouvert par le destinataire"
    assert (
        status_sentence_fr("failed", "Boîte inconnue : <x@y>.", "5.1.1")
        == "Non distribué : Boîte inconnue : <x@y> (code 5.1.1)"
    )
    assert status_sentence_fr("failed") == "Non distribué"
    assert (
        status_sentence_fr("failed", "Identifiant patient inconnu", "902")
        == "Distribué, mais non classé dans le dossier médical : Identifiant patient inconnu "
        "(code 902)"
    )


@pytest.mark.parametrize(
    ("disposition", "state"),
    [
        ("manual-action/MDN-sent-manually; displayed", "displayed"),
        ("automatic-action/MDN-sent-automatically; dispatched", "dispatched"),
        ("automatic-action/MDN-sent-automatically; processed", "filed"),
        (
            "automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant patient "
            "inconnu^applicationErrorCondition| E^Error^errorSeverity",
            "failed",
        ),
        ("manual-action/MDN-sent-manually; deleted", "failed"),
        ("automatic-action/MDN-sent-automatically", None),
        ("nonsense", None),
    ],
)
def test_what_a_disposition_reports(disposition: str, state: str | None) -> None:
    assert report_state(disposition) == state


def test_who_may_report_for_a_recipient() -> None:
    assert decide_report("b@hopital.example", "a@hopital.example", "b@hopital.example").allowed
    assert decide_report("mailer-daemon@relay.example", "a@hopital.example", "").allowed  # DSN
    foreign = decide_report("x@ailleurs.example", "a@hopital.example", "x@ailleurs.example")
    assert not foreign.allowed and foreign.reason == "foreign_report"
    assert not decide_report("x@a.example", "", "x@a.example").allowed


def test_a_ddm_subject_needs_a_package() -> None:
    from mss.policy.mss_headers import decide_ddm_subject

    assert decide_ddm_subject("XDM/1.0/DDM+CR NESSI Ruth 14/07/1977", 1).allowed
    assert decide_ddm_subject("Compte rendu", 0).allowed
    refused = decide_ddm_subject("XDM/1.0/DDM+CR NESSI Ruth 14/07/1977", 0)
    assert (refused.allowed, refused.code, refused.reason) == (False, 906, "ddm_without_package")
