"""DKIM between operators: keys from a local table, never DNS; ed25519 and RSA."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mss.crypto import dkim
from mss.errors import ConfigError

MESSAGE = (
    b"From: Dr Jean Dupont <jean.dupont@mss.localhost>\r\n"
    b"To: cardiologie@other-operator.example.fr\r\nSubject: Avis cardiologique\r\n"
    b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\nMessage-ID: <42@mss.localhost>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Bonjour,\r\nmerci de voir ce patient.\r\n"
)


@pytest.fixture(scope="module", params=["ed25519", "rsa"])
def key(request: pytest.FixtureRequest) -> dkim.DkimSigningKey:
    return dkim.generate_signing_key("mss.localhost", "mss2026", request.param)


@pytest.fixture
def table(key: dkim.DkimSigningKey) -> dkim.DkimKeyTable:
    known = dkim.DkimKeyTable()
    known.add_key(key)
    return known


def test_sign_then_verify(key: dkim.DkimSigningKey, table: dkim.DkimKeyTable) -> None:
    signed = dkim.sign(MESSAGE, key)
    assert signed.startswith(b"DKIM-Signature:") and signed.endswith(MESSAGE)
    expected = b"a=ed25519-sha256" if key.algorithm == "ed25519" else b"a=rsa-sha256"
    assert expected in signed.split(b"\r\n\r\n")[0]
    result = dkim.verify(signed, table)
    assert result.status == "pass", result.reason
    assert (
        result.authentication_results_clause()
        == "dkim=pass header.d=mss.localhost header.s=mss2026"
    )


def test_modified_body_fails(key: dkim.DkimSigningKey, table: dkim.DkimKeyTable) -> None:
    signed = dkim.sign(MESSAGE, key)
    result = dkim.verify(signed.replace(b"voir ce patient", b"voir ce patienT"), table)
    assert result.status == "fail"
    assert result.domain == "mss.localhost"


def test_modified_subject_fails(key: dkim.DkimSigningKey, table: dkim.DkimKeyTable) -> None:
    signed = dkim.sign(MESSAGE, key)
    assert (
        dkim.verify(signed.replace(b"Avis cardiologique", b"Avis urgent"), table).status == "fail"
    )


def test_key_of_another_operator_fails(key: dkim.DkimSigningKey) -> None:
    impostor = dkim.generate_signing_key("mss.localhost", "mss2026", "ed25519")
    table = dkim.DkimKeyTable({impostor.record_name: impostor.public_record})
    assert dkim.verify(dkim.sign(MESSAGE, key), table).status in ("fail", "permerror")


def test_unknown_key_is_permerror(key: dkim.DkimSigningKey) -> None:
    result = dkim.verify(dkim.sign(MESSAGE, key), dkim.DkimKeyTable())
    assert result.status == "permerror"
    assert "mss2026._domainkey.mss.localhost" in result.reason


def test_unsigned_is_none(table: dkim.DkimKeyTable) -> None:
    assert dkim.verify(MESSAGE, table).status == "none"


async def test_async_helpers(key: dkim.DkimSigningKey, table: dkim.DkimKeyTable) -> None:
    signed = await dkim.sign_async(MESSAGE, key)
    assert (await dkim.verify_async(signed, table)).status == "pass"


def test_keys_saved_0600_and_published_in_the_table(
    key: dkim.DkimSigningKey, tmp_path: Path
) -> None:
    path = dkim.save_signing_key(tmp_path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = dkim.load_signing_key(tmp_path, "mss.localhost", "mss2026")
    assert loaded == key
    partner = dkim.generate_signing_key("other-operator.example.fr", "s1", "ed25519")
    (tmp_path / "dkim" / "keys.txt").write_text(
        f"# trust space keys\n{partner.record_name}  {partner.public_record}\n"
    )
    table = dkim.DkimKeyTable.from_pki(tmp_path)
    assert dkim.verify(dkim.sign(MESSAGE, loaded), table).status == "pass"
    assert dkim.verify(dkim.sign(MESSAGE, partner), table).status == "pass"


def test_bad_key_table_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("mss.localhost v=DKIM1; p=AAAA\n")
    with pytest.raises(ConfigError, match="line 1"):
        dkim.DkimKeyTable.from_file(path)


def test_missing_signing_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no DKIM key"):
        dkim.load_signing_key(tmp_path, "mss.localhost", "nope")


# -- mss.policy.dkim: the action on a DKIM failure ---------------------------------------


def test_decide_dkim_records_by_default_and_refuses_only_signing_domains() -> None:
    from mss.policy.dkim import decide_dkim

    assert decide_dkim("fail", "a.example", "a.example", domain_signs=True, action="record").allowed
    assert decide_dkim("none", None, "b.example", domain_signs=False, action="refuse").allowed
    assert decide_dkim("pass", "a.example", "a.example", domain_signs=True, action="refuse").allowed
    assert decide_dkim(
        "pass", "a.example", "mail.a.example", domain_signs=True, action="refuse"
    ).allowed
    for status in ("fail", "none", "permerror"):
        verdict = decide_dkim(status, "a.example", "a.example", domain_signs=True, action="refuse")
        assert (verdict.allowed, verdict.smtp_code, verdict.enhanced_status) == (
            False,
            550,
            "5.7.20",
        )
        assert verdict.sentence_fr.startswith("Aucune signature DKIM valide")
    other = decide_dkim("pass", "relay.example", "a.example", domain_signs=True, action="refuse")
    assert (other.allowed, other.enhanced_status) == (False, "5.7.22")
    assert "signed by relay.example only" in other.sentence


def test_key_table_knows_which_domains_sign() -> None:
    table = dkim.DkimKeyTable({"s1._domainkey.a.example": "v=DKIM1; k=ed25519; p=AAAA"})
    assert table.signs("a.example") and table.signs("A.example.")
    assert not table.signs("example") and not table.signs("b.a.example")
