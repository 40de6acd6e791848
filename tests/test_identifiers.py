"""Validators of French health identifiers: known good and bad keys.

Pure functions: no database, so these run once, not per engine.
"""

from __future__ import annotations

import pytest

from mss.directory.identifiers import (
    PROFESSIONS,
    WrongCheckKey,
    ins_key,
    luhn_valid,
    normalise_address,
    normalise_adeli,
    normalise_dn,
    normalise_domain,
    normalise_finess,
    normalise_id_nat,
    normalise_ins,
    normalise_phone,
    normalise_profession_code,
    normalise_rpps,
    profession_label,
)
from mss.errors import InvalidInput


def test_ins_of_the_ans_cda_sample_is_valid() -> None:
    assert normalise_ins("277076322082910") == "277076322082910"
    assert normalise_ins("2 77 07 63 220 829 10") == "277076322082910"


def test_ins_with_wrong_key_names_the_expected_key() -> None:
    with pytest.raises(WrongCheckKey, match="has key 11 but its NIR gives key 30"):
        normalise_ins("147720425367411")


def _with_key(first13: str) -> str:
    return f"{first13}{ins_key(first13):02d}"


def test_corsica_2a_and_2b_read_as_19_and_18() -> None:
    assert ins_key("185052A123456") == 97 - 1850519123456 % 97
    assert ins_key("185052B123456") == 97 - 1850518123456 % 97
    assert normalise_ins(_with_key("185052A123456")) == _with_key("185052A123456")
    assert normalise_ins(_with_key("285052b123456").lower()) == _with_key("285052B123456")
    wrong = _with_key("185052A123456")[:13] + f"{(ins_key('185052A123456') % 97) + 1:02d}"
    with pytest.raises(WrongCheckKey):
        normalise_ins(wrong)


@pytest.mark.parametrize(
    "value, sentence",
    [
        ("27707632208291", "has 14 characters"),
        ("2770763220829100", "has 16 characters"),
        ("27707632208X910", "digits only, except 2A or 2B"),
        ("277072C22082910", "digits only, except 2A or 2B"),
        ("977076322082910", r"first digit \(sex\) is 1 to 8"),
    ],
)
def test_malformed_ins_is_refused_with_its_reason(value: str, sentence: str) -> None:
    with pytest.raises(InvalidInput, match=sentence) as caught:
        normalise_ins(value)
    assert not isinstance(caught.value, WrongCheckKey)


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_rpps_luhn_key() -> None:
    assert normalise_rpps("01234567897") == "01234567897"
    assert normalise_rpps("997 003 679 09") == "99700367909"
    with pytest.raises(WrongCheckKey, match="fails its Luhn check"):
        normalise_rpps("01234567898")
    with pytest.raises(InvalidInput, match="exactly 11 digits"):
        normalise_rpps("0123456789")


def test_id_nat_forms() -> None:
    assert normalise_id_nat("801234567897") == "801234567897"
    assert normalise_id_nat("01234567897") == "801234567897"  # bare RPPS
    assert normalise_id_nat("899700367909") == "899700367909"
    assert normalise_id_nat("0751234567") == "0751234567"  # 0 + ADELI
    assert normalise_id_nat("02A1234567") == "02A1234567"
    assert normalise_id_nat("3750712184/1453") == "3750712184/1453"  # structure staff


def test_id_nat_with_wrong_rpps_key() -> None:
    # The Annuaire Santé example practitioner: its RPPS key does not hold.
    with pytest.raises(WrongCheckKey, match="RPPS 10102727017 fails its Luhn check"):
        normalise_id_nat("810102727017")
    assert normalise_id_nat("810102727017", check_key=False) == "810102727017"


@pytest.mark.parametrize("value", ["8123", "901234567897", "0ABCDEFGHI", "3750712184/", "abc"])
def test_malformed_id_nat(value: str) -> None:
    with pytest.raises(InvalidInput, match="idNat"):
        normalise_id_nat(value)


def test_adeli() -> None:
    assert normalise_adeli("75 1234567") == "751234567"
    with pytest.raises(InvalidInput, match="ADELI"):
        normalise_adeli("7512345")


def test_finess() -> None:
    assert normalise_finess("750712184") == "750712184"
    assert normalise_finess("13 078 604 9") == "130786049"
    assert normalise_finess("2A0000001") == "2A0000001"  # Corsica: key not computable
    with pytest.raises(WrongCheckKey):
        normalise_finess("750712185")
    assert normalise_finess("750712185", check_key=False) == "750712185"
    with pytest.raises(InvalidInput, match="9 characters"):
        normalise_finess("75071218")


def test_tre_g15_professions() -> None:
    assert profession_label("10") == "Médecin"
    assert profession_label("21") == "Pharmacien"
    assert profession_label("60") == "Infirmier"
    assert profession_label("70") == "Masseur-Kinésithérapeute"
    assert PROFESSIONS["95"] == "Diététicien" and PROFESSIONS["96"] == "Psychomotricien"
    assert PROFESSIONS["98"] == "Manipulateur ERM"
    with pytest.raises(InvalidInput, match="not in TRE_G15"):
        normalise_profession_code("99")


def test_addresses_and_domains() -> None:
    assert (
        normalise_address(" mailto:Jean.Dupont@Hopital.MSSante.fr ")
        == "jean.dupont@hopital.mssante.fr"
    )
    assert normalise_domain("Hopital.Example.") == "hopital.example"
    for bad in ("jean", "@x.fr", "jean..dupont@x.fr", "jean@localhost", "jean@-x.fr", "jé@x.fr"):
        with pytest.raises(InvalidInput, match="not a mail address"):
            normalise_address(bad)


def test_phone_numbers() -> None:
    assert normalise_phone("06 12 34 56 78") == "+33612345678"
    assert normalise_phone("0033 6 12 34 56 78") == "+33612345678"
    assert normalise_phone("+590 690 12 34 56") == "+590690123456"
    with pytest.raises(InvalidInput, match="phone number"):
        normalise_phone("12")


def test_operator_dn_forms_compare_equal() -> None:
    whitelist = "CN=smtp-1.op.example,OU=000000000000001,O=OPERATEUR,ST=Gironde (33),C=FR"
    assert normalise_dn(whitelist) == whitelist
    assert (
        normalise_dn("C=FR, ST=Gironde (33), O=OPERATEUR, OU=000000000000001, cn=smtp-1.op.example")
        == whitelist
    )
    assert (
        normalise_dn("/C=FR/ST=Gironde (33)/O=OPERATEUR/OU=000000000000001/CN=smtp-1.op.example")
        == whitelist
    )
