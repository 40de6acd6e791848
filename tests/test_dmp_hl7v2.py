"""HL7 v2 data types of XDS metadata, the INS check and the error values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dmp_bridge.errors import XdmError
from dmp_bridge.hl7v2 import Coded, parse_cne, parse_cx, parse_dtm, parse_xcn, parse_xon
from dmp_bridge.ins import check_ins, nir_key


def test_cx_french_ins() -> None:
    cx = parse_cx("277076322082910^^^&1.2.250.1.213.1.4.10&ISO^NH")
    assert (cx.id, cx.authority_oid, cx.id_type, cx.problem) == (
        "277076322082910",
        "1.2.250.1.213.1.4.10",
        "NH",
        None,
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "it is empty"),
        ("null^^^&null&ISO", "its identifier is missing (literal 'null' or empty)"),
        (
            "123^^&1.2.3&ISO",
            (
                "the assigning authority '&1.2.3&ISO' sits in component 3 instead of 4 "
                "(expected ID^^^&OID&ISO)"
            ),
        ),
        ("123", "it has 1 component(s) and no assigning authority (expected ID^^^&OID&ISO)"),
        ("123^x^^&1.2.3&ISO", "components 2 and 3 must be empty (expected ID^^^&OID&ISO)"),
        ("123^^^&GSIHealth&ISO", "its assigning authority 'GSIHealth' is not an OID"),
        ("123^^^", "it has no assigning authority"),
    ],
)
def test_cx_problems(value: str, problem: str) -> None:
    assert parse_cx(value).problem == problem


def test_xcn_and_xon_french_forms() -> None:
    person = parse_xcn("899700367909^DOC0036790^KIT^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS")
    assert (person.id, person.family, person.given, person.authority_oid, person.id_type) == (
        "899700367909",
        "DOC0036790",
        "KIT",
        "1.2.250.1.71.4.2.1",
        "IDNPS",
    )
    org = parse_xon("BCOM^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^499700367909006")
    assert (org.name, org.id, org.authority_oid, org.id_type) == (
        "BCOM",
        "499700367909006",
        "1.2.250.1.71.4.2.2",
        "IDNST",
    )
    assert parse_xcn("Sherry Dopplemeyer").id is None  # free text, not an identifier
    assert parse_xon("Cleveland Clinic").name == "Cleveland Clinic"


def test_cne() -> None:
    assert parse_cne("SM26^Qualifié en médecine générale^1.2.250.1.71.4.2.5") == Coded(
        "SM26", "1.2.250.1.71.4.2.5", "Qualifié en médecine générale"
    )
    assert parse_cne("10^Médecin^^^&1.2.250.1.71.1.2.7&ISO") == Coded(
        "10", "1.2.250.1.71.1.2.7", "Médecin"
    )
    assert parse_cne("Attending") == Coded("Attending")


def test_dtm() -> None:
    assert parse_dtm("20240115093000") == datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    assert parse_dtm("202401150930+0100") == datetime(
        2024, 1, 15, 9, 30, tzinfo=timezone(timedelta(hours=1))
    )
    assert parse_dtm("20240115") == datetime(2024, 1, 15, tzinfo=UTC)
    assert parse_dtm("20240115093000.25-0500") == datetime(
        2024, 1, 15, 9, 30, 0, 250000, tzinfo=timezone(timedelta(hours=-5))
    )
    assert parse_dtm("20241315") is None and parse_dtm("soon") is None and parse_dtm(None) is None


def test_nir_key_and_corsica() -> None:
    assert nir_key("1477204253674") == 30  # the DUI sample carries 11
    assert check_ins("147720425367411", "x").key_ok is False
    assert check_ins("277076322082910", "x").key_ok is True
    corsica = "185072A123456"
    key = 97 - int(corsica.replace("2A", "19")) % 97
    assert check_ins(f"{corsica}{key:02d}", "x").key_ok is True
    assert check_ins("2770763220829", "x").complete is False
    assert check_ins("ABC", "x").key_ok is None


def test_error_values() -> None:
    error = XdmError(902, "Unknown patient 123.", "Patient 123 inconnu.")
    assert (error.label_fr, error.label_en) == (
        "Identifiant patient inconnu",
        "Unknown patient identifier",
    )
    assert error.as_dict() == {
        "code": 902,
        "sentence": "Unknown patient 123.",
        "sentence_fr": "Patient 123 inconnu.",
    }
    assert XdmError(906, "x").sentence_fr == "Erreur 'Autre'"
    assert str(error) == "902: Unknown patient 123."
    with pytest.raises(ValueError):
        XdmError(907, "not an MSSanté code")
