"""``mss.policy.encryption``: the refusal of undecryptable mail and when relayed mail must be
encrypted, as pure decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from mss.config import ConfigError, load_settings
from mss.policy.encryption import (
    DECRYPTION_VERDICTS,
    ENCRYPT_OUTBOUND_MODES,
    decide_decryption,
    decide_outbound_encryption,
    decide_recipient_certificate,
    should_encrypt,
)

R = "dr.house@partner.example"


@pytest.mark.parametrize("status", sorted(DECRYPTION_VERDICTS))
def test_each_undecryptable_status_is_a_5xx_naming_the_recipient(status: str) -> None:
    decision = decide_decryption(status, R)
    assert not decision.allowed and decision.smtp_code == 554
    assert decision.enhanced_status == ("5.7.6" if status == "unsupported" else "5.7.5")
    assert decision.sentence.isascii()  # the SMTP reply
    assert decision.sentence_fr.startswith("Message chiffré refusé : ")
    assert decision.reason == f"decryption_{status}"
    if status != "unsupported":
        assert R in decision.sentence and R in decision.sentence_fr


def test_decrypted_is_allowed_and_an_unknown_status_is_a_corruption() -> None:
    assert decide_decryption("decrypted", R).allowed
    unknown = decide_decryption("something else", R, "why")
    assert unknown.enhanced_status == "5.7.5" and unknown.sentence.endswith("(why)")


@pytest.mark.parametrize(
    ("mode", "known", "encrypt", "allowed"),
    [
        ("never", True, False, True),
        ("never", False, False, True),
        ("when_known", True, True, True),
        ("when_known", False, False, True),
        ("required", True, True, True),
        ("required", False, False, False),
    ],
)
def test_outbound_encryption_modes(mode: str, known: bool, encrypt: bool, allowed: bool) -> None:
    assert should_encrypt(mode, known) is encrypt
    decision = decide_outbound_encryption(mode, R, known)
    assert decision.allowed is allowed
    if not allowed:
        assert (decision.smtp_code, decision.enhanced_status) == (550, "5.7.5")
        assert f"knows no encryption certificate for {R}" in decision.sentence


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        ({"addresses": 0}, "names no e-mail address"),
        ({"rsa": False}, "its key is not RSA"),
        ({"key_encipherment": False}, "does not allow keyEncipherment"),
        ({"chain_status": "unknown_ca", "chain_reason": "no anchor"}, "not trusted: no anchor"),
    ],
)
def test_a_certificate_the_hub_cannot_encrypt_to_is_refused(
    facts: dict[str, object], words: str
) -> None:
    good: dict[str, object] = dict(
        addresses=1, rsa=True, key_encipherment=True, chain_status="valid", chain_reason=""
    )
    assert decide_recipient_certificate(**good).allowed  # type: ignore[arg-type]
    refused = decide_recipient_certificate(**{**good, **facts})  # type: ignore[arg-type]
    assert not refused.allowed and words in refused.sentence


def test_the_setting_takes_only_its_three_words(tmp_path: Path) -> None:
    config = tmp_path / "mss.toml"
    assert load_settings(config_file(config, "")).smime.encrypt_outbound == "when_known"
    for mode in ENCRYPT_OUTBOUND_MODES:
        settings = load_settings(config_file(config, f'[smime]\nencrypt_outbound = "{mode}"\n'))
        assert settings.smime.encrypt_outbound == mode
    with pytest.raises(ConfigError, match='smime.encrypt_outbound must be "never", "when_known"'):
        load_settings(config, env={"MSS_SMIME_ENCRYPT_OUTBOUND": "always"})


def config_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
