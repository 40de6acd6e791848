"""Settings: defaults, file, environment overrides, precise refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from mss.config import Settings, load_settings
from mss.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "mss.toml.example"


def test_defaults_serve_one_laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert (
        settings.ports.smtp_relay,
        settings.ports.submission,
        settings.ports.submission_tls,
    ) == (2525, 2587, 2465)
    assert (settings.ports.imap, settings.ports.imaps, settings.ports.https) == (2143, 2993, 8443)
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("var/mss.sqlite3")
    assert settings.hostname == "localhost"
    assert settings.source == "defaults"


def test_example_file_states_every_default() -> None:
    from_file = load_settings(EXAMPLE, env={})
    defaults = Settings()
    from_file.source = defaults.source
    assert from_file.data_dir == str(
        EXAMPLE.parent / defaults.data_dir
    )  # read from the file's folder
    from_file.data_dir = defaults.data_dir
    assert from_file == defaults


def test_file_then_environment(tmp_path: Path) -> None:
    file = tmp_path / "mss.toml"
    file.write_text('hostname = "hub.example"\n[ports]\nimap = 1143\n[listeners]\nimap = false\n')
    settings = load_settings(
        file,
        env={
            "MSS_PORTS_IMAP": "3143",
            "MSS_DATABASE_URL": "postgresql+asyncpg://x/y",
            "MSS_LISTENERS_WORKERS": "no",
            "MSS_LIMITS_SMTP_IDLE_TIMEOUT": "12",
        },
    )
    assert settings.hostname == "hub.example"
    assert settings.ports.imap == 3143
    assert settings.listeners.imap is False and settings.listeners.workers is False
    assert settings.limits.smtp_idle_timeout == 12.0
    assert settings.effective_database_url == "postgresql+asyncpg://x/y"


def test_mss_config_variable_names_the_file(tmp_path: Path) -> None:
    file = tmp_path / "other.toml"
    file.write_text('domain = "hopital.example"\n')
    assert load_settings(env={"MSS_CONFIG": str(file)}).patient_domain == "patient.hopital.example"


@pytest.mark.parametrize(
    "text, message",
    [
        ('hostnme = "x"\n', "unknown setting 'hostnme'"),
        ('[ports]\nimap = "high"\n', "expected a whole number, got 'high'"),
        ("[ports]\nimap = true\n", "expected a whole number, got True"),
        ("ports = 3\n", "[ports] must be a table"),
        ("hostname = \n", "is not valid TOML"),
    ],
)
def test_bad_file_is_refused_precisely(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "mss.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(file, env={})
    assert message in str(caught.value)
    assert str(file) in str(caught.value)


def test_bad_environment_value_is_refused() -> None:
    with pytest.raises(
        ConfigError, match="environment \\[listeners\\] imap: expected true or false, got 'maybe'"
    ):
        load_settings(env={"MSS_LISTENERS_IMAP": "maybe"})


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_agenda_reminder_hours_from_file_and_environment(tmp_path: Path) -> None:
    assert Settings().agenda.reminder_hours == [48, 2]
    file = tmp_path / "mss.toml"
    file.write_text("[agenda]\nreminder_hours = [72, 24, 1]\n")
    assert load_settings(file, env={}).agenda.reminder_hours == [72, 24, 1]
    assert load_settings(
        file, env={"MSS_AGENDA_REMINDER_HOURS": "24, 3"}
    ).agenda.reminder_hours == [24, 3]
    file.write_text('[agenda]\nreminder_hours = [48, "deux"]\n')
    with pytest.raises(
        ConfigError, match="\\[agenda\\] reminder_hours: expected a whole number, got 'deux'"
    ):
        load_settings(file, env={})
    file.write_text("[agenda]\nreminder_hours = 48\n")
    with pytest.raises(ConfigError, match="expected a list of whole numbers, got 48"):
        load_settings(file, env={})


def test_metrics_allow_and_log_format(tmp_path: Path) -> None:
    assert (
        Settings().metrics.allow == ["127.0.0.1/32", "::1/128"] and Settings().log_format == "text"
    )
    file = tmp_path / "mss.toml"
    file.write_text('log_format = "json"\n[metrics]\nallow = ["10.0.0.0/8", "192.0.2.7"]\n')
    settings = load_settings(file, env={})
    assert settings.log_format == "json" and settings.metrics.allow == ["10.0.0.0/8", "192.0.2.7"]
    assert load_settings(file, env={"MSS_METRICS_ALLOW": "127.0.0.1, ::1"}).metrics.allow == [
        "127.0.0.1",
        "::1",
    ]
    assert load_settings(file, env={"MSS_METRICS_ALLOW": ""}).metrics.allow == []  # nobody
    file.write_text('[metrics]\nallow = ["10.0.0.0/33"]\n')
    with pytest.raises(
        ConfigError, match="metrics.allow: '10.0.0.0/33' is not an IP address or network"
    ):
        load_settings(file, env={})
    file.write_text('log_format = "xml"\n')
    with pytest.raises(ConfigError, match='log_format must be "text" or "json", got \'xml\''):
        load_settings(file, env={})


def test_handover_settings(tmp_path: Path) -> None:
    file = tmp_path / "mss.toml"
    file.write_text("[portal]\nhandover_age = 15\nhandover_notice_days = 10\n")
    settings = load_settings(file, env={})
    assert (settings.portal.handover_age, settings.portal.handover_notice_days) == (15, 10)
    assert load_settings(env={}).portal.handover_age == 16
    file.write_text("[portal]\nhandover_age = 0\n")
    with pytest.raises(ConfigError, match="portal.handover_age must be between 1 and 18, got 0"):
        load_settings(file, env={})
    file.write_text("[portal]\nhandover_notice_days = -1\n")
    with pytest.raises(ConfigError, match="portal.handover_notice_days must be 0 or more, got -1"):
        load_settings(file, env={})


def test_relay_dkim_failure_action(tmp_path: Path) -> None:
    file = tmp_path / "mss.toml"
    file.write_text('[relay]\ndkim_failure = "refuse"\n')
    assert load_settings(file, env={}).relay.dkim_failure == "refuse"
    file.write_text('[relay]\ndkim_failure = "bounce"\n')
    with pytest.raises(ConfigError, match="relay.dkim_failure must be .*, got 'bounce'"):
        load_settings(file, env={})
