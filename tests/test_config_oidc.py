"""[oidc]: off by default, read from the file and the environment, refused precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from mss.config import load_settings
from mss.errors import ConfigError


def test_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert not settings.oidc.enabled
    assert settings.oidc.scope == "openid scope_all"
    assert settings.oidc.id_nat_claims == ["SubjectNameID", "preferred_username"]
    assert settings.oidc.acr_values == ["eidas1"]


def test_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "mss.toml"
    config.write_text(
        '[oidc]\nissuer = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet"\n'
        'client_id = "mss-hub"\nacr_values = ["eidas1", "eidas2"]\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={"MSS_OIDC_CLIENT_SECRET": "s3cret"})
    assert settings.oidc.enabled and settings.oidc.client_secret == "s3cret"
    assert settings.oidc.acr_values == ["eidas1", "eidas2"]
    settings = load_settings(config, env={"MSS_OIDC_ID_NAT_CLAIMS": "preferred_username"})
    assert settings.oidc.id_nat_claims == ["preferred_username"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('issuer = "http://idp.example"\nclient_id = "c"', "must be an https:// URL"),
        ('issuer = "ftp://idp.example"\nclient_id = "c"', "must be an https:// URL"),
        ('issuer = "https://idp.example?x=1"\nclient_id = "c"', "no query or fragment"),
        ('issuer = "https://idp.example"', "oidc.client_id is required"),
        ('issuer = "https://idp.example"\nclient_id = "c"\nscope = "profile"', "include openid"),
        ('issuer = "https://idp.example"\nclient_id = "c"\nid_nat_claims = []', "at least one"),
        ('issuer = "https://idp.example"\nclient_id = "c"\nsession_minutes = 0', "1 or more"),
        ('issuer = "https://idp.example"\nclient_id = "c"\ntimeout_seconds = 0', "above 0"),
    ],
)
def test_refused_precisely(tmp_path: Path, section: str, message: str) -> None:
    config = tmp_path / "mss.toml"
    config.write_text(f"[oidc]\n{section}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})


def test_http_is_allowed_on_loopback_only(tmp_path: Path) -> None:
    config = tmp_path / "mss.toml"
    config.write_text('[oidc]\nissuer = "http://127.0.0.1:9400"\nclient_id = "c"\n', "utf-8")
    assert load_settings(config, env={}).oidc.issuer == "http://127.0.0.1:9400"
