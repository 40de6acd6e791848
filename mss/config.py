"""One settings object, read from mss.toml with MSS_* environment overrides.

The file is found with ``--config PATH``, then ``MSS_CONFIG``, then
``./mss.toml``; with none of them the defaults serve one laptop with
nothing installed: data under ``./var/``, SQLite, the development PKI.

Environment overrides name a top-level key (``MSS_DATABASE_URL``) or a
section and key (``MSS_PORTS_IMAP``, ``MSS_LISTENERS_PORTAL``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mss.errors import ConfigError


@dataclass
class Ports:
    smtp_relay: int = 2525
    submission: int = 2587
    submission_tls: int = 2465
    imap: int = 2143
    imaps: int = 2993
    https: int = 8443


@dataclass
class Listeners:
    """Which parts ``mss serve`` starts; each can be switched off."""

    smtp_relay: bool = True
    submission: bool = True
    submission_tls: bool = True
    imap: bool = True
    imaps: bool = True
    https: bool = True
    workers: bool = True
    job_process: bool = False  # the workers in a second process: a second core for follow-up work
    # Processes serving the IMAP ports (SO_REUSEPORT), on PostgreSQL: IDLE wake-ups cross them
    # through LISTEN/NOTIFY. SQLite has no such channel: there one process serves IMAP.
    imap_processes: int = 1
    # Processes serving the SMTP ports (SO_REUSEPORT): more cores for the gateway. "auto": one
    # per usable core, at most AUTO_SMTP_PROCESSES (``smtp_process_count``).
    smtp_processes: int | str = "auto"
    # Processes serving the HTTPS port (portal and APIs, SO_REUSEPORT). "auto": as
    # smtp_processes on PostgreSQL, one on SQLite (``mss.serve.https_count``); a number is kept.
    https_processes: int | str = "auto"

    @property
    def smtp_process_count(self) -> int:
        """``smtp_processes`` as a number, "auto" resolved from the cores this process may use."""
        if self.smtp_processes == "auto":
            return max(1, min(usable_cpus(), AUTO_SMTP_PROCESSES))
        return int(self.smtp_processes)


# "auto" stops there: each SMTP process keeps its own database pool (20 PostgreSQL connections
# at most, PostgreSQL's default limit is 100), and SQLite serialises every write in one file.
AUTO_SMTP_PROCESSES = 4


def usable_cpus() -> int:
    """The cores this process may run on (its affinity: a container's limit), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class Limits:
    max_message_size: int = 25 * 1024 * 1024
    max_message_size_to_patient: int = 25 * 1024 * 1024
    max_recipients: int = 100
    max_line_length: int = 998
    smtp_idle_timeout: float = 300.0
    max_connections_per_ip: int = 20
    imap_autologout: float = 30 * 60.0
    imap_idle_timeout: float = 29 * 60.0
    imap_max_literal: int = 50 * 1024 * 1024
    imap_connections_per_user: int = 20
    database_timeout: float = 10.0
    # RCPT facts of existing addresses are remembered this long (mss.directory.facts); delivery
    # reads them again, so a change made by another process is at worst a bounce. 0: never.
    recipient_cache_seconds: float = 2.0


@dataclass
class Tls:
    """Server certificate and trust anchors; empty paths mean the development PKI."""

    cert_file: str = ""
    key_file: str = ""
    trust_dir: str = ""
    crl_file: str = ""
    # Each TLS listener's session-ticket keys are replaced this often (a new server context); a
    # ticket older than that gets a full handshake.
    ticket_key_hours: float = 12.0


@dataclass
class Portal:
    session_idle_minutes: int = 15
    opposition_window_days: int = 42
    # A minor's space becomes their own at this age (their guardians' access ends); the
    # guardians are told this many days before (``portal.handover``).
    handover_age: int = 16
    handover_notice_days: int = 30
    public_url: str = ""
    # Who patients contact about the service (the help page): an address, a phone, a sentence.
    support_contact: str = ""


@dataclass
class Notifications:
    """Outbound mail for patient notifications; no smarthost writes to the dev outbox."""

    smarthost: str = ""
    smarthost_port: int = 25
    sender: str = ""
    sms_provider: str = "outbox"
    # Notices to one person on one channel within this many seconds go out as one (0: each alone).
    group_seconds: float = 120.0
    # A minor is told on their own e-mail or phone (besides the guardians) from this age.
    minor_own_contact_age: int = 16


@dataclass
class Auth:
    """Logins: how long a verified password is remembered (``mss.crypto.passwords``; 0 = never)."""

    cache_seconds: float = 300.0


@dataclass
class LoginThrottleLimits:
    """Failed logins, every protocol (``mss.policy.login``): locks per source, back-off per
    account."""

    lock_after: int = 5  # failures of one account from one address: that pair is locked
    source_lock_after: int = 30  # failures from one address, any account: the address is locked
    lock_minutes: float = (
        15.0  # how long a lock lasts; a series is forgotten after as long without failure
    )
    free_failures: int = 1  # failures of an account before each attempt must wait
    back_off_seconds: float = 2.0  # the first wait, doubled at each further failure (0: no wait)
    max_back_off_seconds: float = (
        60.0  # the longest wait, all the owner waits when others lock their address
    )


@dataclass
class Metrics:
    """Who may read ``/metrics`` (addresses or CIDR networks; an empty list: nobody)."""

    allow: list[str] = field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])


@dataclass
class Smime:
    """S/MIME encryption of relayed mail (``mss.policy.encryption``): "never", "when_known" (a
    recipient certificate was imported) or "required" (no certificate: the sender gets a
    bounce)."""

    encrypt_outbound: str = "when_known"


@dataclass
class Relay:
    """Mail relayed by other operators (``mss.policy.dkim``): on a DKIM failure from a domain
    that signs, "record" (Authentication-Results only) or "refuse" (550 5.7.20 at DATA)."""

    dkim_failure: str = "record"


@dataclass
class Retention:
    """Mailboxes left unused (``mss.policy.retention``): a warning, then their messages purged;
    not the DMP."""

    warn_after_days: int = 335  # days without a login before the one warning (about 11 months)
    purge_after_days: int = (
        365  # days without a login before the purge (at least 30 days after the warning)
    )
    closed_account_days: int = (
        90  # days after a patient account is closed for good before its messages go
    )
    batch: int = 500  # folder entries removed per transaction while purging


@dataclass
class Agenda:
    """Appointment reminders: one notification this many hours before each appointment."""

    reminder_hours: list[int] = field(default_factory=lambda: [48, 2])


@dataclass
class Oidc:
    """Professional login by OpenID Connect (Pro Santé Connect style); off while ``issuer`` is
    empty (``mss.oidc``, ``dmp_bridge.pro_login``)."""

    issuer: str = ""  # e.g. https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet
    client_id: str = ""
    client_secret: str = ""
    redirect_uri: str = ""  # empty: <portal public URL>/pro/retour
    scope: str = "openid scope_all"
    # The claims naming the professional's idNat, the first one present wins (PSC: SubjectNameID
    # in the userinfo and access token, preferred_username in the ID token).
    id_nat_claims: list[str] = field(
        default_factory=lambda: ["SubjectNameID", "preferred_username"]
    )
    # The authentication levels accepted (the token's acr); asked for as acr_values. Empty: any.
    acr_values: list[str] = field(default_factory=lambda: ["eidas1"])
    jwks_cache_seconds: float = (
        3600.0  # discovery and keys kept this long (an unknown kid: at once)
    )
    session_minutes: int = 60  # a browser login's professional session lasts this long
    leeway_seconds: int = 30  # clock skew allowed on exp, nbf, iat
    timeout_seconds: float = 10.0  # each request to the provider

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)


@dataclass
class Settings:
    hostname: str = "localhost"
    domain: str = "mss.localhost"
    data_dir: str = "var"
    database_url: str = ""
    bind: str = "127.0.0.1"
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line (mss.log_format)
    ports: Ports = field(default_factory=Ports)
    listeners: Listeners = field(default_factory=Listeners)
    limits: Limits = field(default_factory=Limits)
    tls: Tls = field(default_factory=Tls)
    portal: Portal = field(default_factory=Portal)
    notifications: Notifications = field(default_factory=Notifications)
    agenda: Agenda = field(default_factory=Agenda)
    retention: Retention = field(default_factory=Retention)
    login_throttle: LoginThrottleLimits = field(default_factory=LoginThrottleLimits)
    auth: Auth = field(default_factory=Auth)
    metrics: Metrics = field(default_factory=Metrics)
    oidc: Oidc = field(default_factory=Oidc)
    smime: Smime = field(default_factory=Smime)
    relay: Relay = field(default_factory=Relay)
    source: str = "defaults"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def pki_dir(self) -> Path:
        return self.data_path / "pki"

    @property
    def patient_domain(self) -> str:
        return f"patient.{self.domain}"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_path / 'mss.sqlite3').resolve()}"

    @property
    def smtp_process_count(self) -> int:
        """The SMTP processes ``mss serve`` runs: ``listeners.smtp_process_count``, except that
        "auto" means one on SQLite. IMAP runs in one process there, and SQLite has no channel
        to wake its IDLE sessions from another process's deliveries (they would wait for the
        30 s catch-up); SQLite also serialises every write, so a second gateway process adds
        little. A number asked for explicitly is honoured."""
        if self.listeners.smtp_processes == "auto" and self.effective_database_url.startswith(
            "sqlite"
        ):
            return 1
        return self.listeners.smtp_process_count

    @property
    def server_cert_file(self) -> Path:
        return Path(self.tls.cert_file) if self.tls.cert_file else self.pki_dir / "server.pem"

    @property
    def server_key_file(self) -> Path:
        return Path(self.tls.key_file) if self.tls.key_file else self.pki_dir / "server.key"

    @property
    def crl_path(self) -> Path:
        return Path(self.tls.crl_file) if self.tls.crl_file else self.pki_dir / "crl.pem"


_SECTIONS = {
    f.name for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(f.default_factory)
}  # type: ignore[arg-type]


_KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def _coerce(value: Any, target: Any, where: str) -> Any:
    if isinstance(target, list):
        return _coerce_list(value, where, target[0] if target else "")
    kind = type(target)
    expected = _KIND_WORDS.get(kind, kind.__name__)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(text)
            return kind(text)
        except ValueError:
            raise ConfigError(f"{where}: expected {expected}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    return value


def _coerce_list(value: Any, where: str, example: Any) -> list[Any]:
    """A list like the default (whole numbers, strings): a TOML array, or "48,2" in an environment
    variable."""
    items = [v for v in value.replace(" ", "").split(",") if v] if isinstance(value, str) else value
    if not isinstance(items, list):
        kinds = "whole numbers" if isinstance(example, int) else "strings"
        raise ConfigError(f"{where}: expected a list of {kinds}, got {value!r}")
    return [_coerce(item, example, where) for item in items]


def _count_or_auto(value: Any, where: str) -> int | str:
    """A whole number or "auto" (``[listeners] smtp_processes``)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(f'{where}: expected a whole number or "auto", got {value!r}')


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in known or key == "source":
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(obj, key)
        if isinstance(obj, Listeners) and key in ("smtp_processes", "https_processes"):
            setattr(obj, key, _count_or_auto(value, f"{where} {key}"))
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            _apply(current, value, f"{where} [{key}]")
        else:
            setattr(obj, key, _coerce(value, current, f"{where} {key}"))


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    top = {f.name for f in dataclasses.fields(Settings)} - _SECTIONS - {"source"}
    for name, value in env.items():
        if not name.startswith("MSS_") or name == "MSS_CONFIG":
            continue
        key = name[4:].lower()
        if key in top:
            out[key] = value
            continue
        for section in _SECTIONS:
            if key.startswith(section + "_"):
                out.setdefault(section, {})[key[len(section) + 1 :]] = value
                break
    return out


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    data_dir: str | None = None,
) -> Settings:
    """Read the settings: file (explicit, MSS_CONFIG or ./mss.toml), then MSS_* variables, then
    ``data_dir``.

    The data folder comes out absolute: a relative ``data_dir`` in a file is
    read from the file's own folder, so every command finds the same data
    whatever the current folder; one given by MSS_DATA_DIR or ``--data-dir``
    is read from the current folder, as a person typed it.
    """
    env = os.environ if env is None else env
    settings = Settings()
    base = Path.cwd()
    chosen = path or env.get("MSS_CONFIG")
    if chosen is None and Path("mss.toml").is_file():
        chosen = "mss.toml"
    if chosen is not None:
        file = Path(chosen)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file {file} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {file} is not valid TOML: {exc}") from None
        _apply(settings, data, str(file))
        settings.source = str(file)
        base = file.resolve().parent
    settings.data_dir = str(base / settings.data_dir)
    _apply(settings, _env_overrides(env), "environment")
    if data_dir is not None:
        settings.data_dir = data_dir
    settings.data_dir = str(Path(settings.data_dir).resolve())
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f'log_format must be "text" or "json", got {settings.log_format!r}')
    from mss.policy.operations import parse_networks

    try:
        parse_networks(settings.metrics.allow)
    except ValueError as exc:
        raise ConfigError(f"metrics.allow: {exc}") from None
    from mss.policy.retention import RetentionRules, rules_problem

    retention = settings.retention
    problem = rules_problem(
        RetentionRules(
            retention.warn_after_days, retention.purge_after_days, retention.closed_account_days
        )
    )
    if problem or retention.batch < 1:
        raise ConfigError(problem or f"retention.batch must be 1 or more, got {retention.batch}")
    if not 1 <= settings.portal.handover_age <= 18:
        raise ConfigError(
            f"portal.handover_age must be between 1 and 18, got {settings.portal.handover_age}"
        )
    if settings.portal.handover_notice_days < 0:
        raise ConfigError(
            "portal.handover_notice_days must be 0 or more, got "
            f"{settings.portal.handover_notice_days}"
        )
    if not settings.tls.ticket_key_hours > 0:
        raise ConfigError(
            f"tls.ticket_key_hours must be above 0, got {settings.tls.ticket_key_hours}"
        )
    if settings.listeners.smtp_process_count < 1:
        raise ConfigError(
            f"listeners.smtp_processes must be 1 or more, got {settings.listeners.smtp_processes}"
        )
    from mss.policy.encryption import ENCRYPT_OUTBOUND_MODES

    if settings.smime.encrypt_outbound not in ENCRYPT_OUTBOUND_MODES:
        raise ConfigError(
            "smime.encrypt_outbound must be "
            + ", ".join(f'"{mode}"' for mode in ENCRYPT_OUTBOUND_MODES)
            + f", got {settings.smime.encrypt_outbound!r}"
        )
    from mss.policy.dkim import DKIM_FAILURE_ACTIONS

    if settings.relay.dkim_failure not in DKIM_FAILURE_ACTIONS:
        raise ConfigError(
            "relay.dkim_failure must be "
            + ", ".join(f'"{action}"' for action in DKIM_FAILURE_ACTIONS)
            + f", got {settings.relay.dkim_failure!r}"
        )
    https = settings.listeners.https_processes
    if https != "auto" and int(https) < 1:
        raise ConfigError(f"listeners.https_processes must be 1 or more, got {https}")
    oidc_problem = oidc_settings_problem(settings.oidc)
    if oidc_problem:
        raise ConfigError(oidc_problem)
    return settings


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def oidc_settings_problem(oidc: Oidc) -> str:
    """What is wrong with ``[oidc]``, or "" (it is off, or complete)."""
    if not oidc.enabled:
        return ""
    from urllib.parse import urlsplit

    issuer = urlsplit(oidc.issuer)
    loopback = (issuer.hostname or "") in LOOPBACK_HOSTS
    if issuer.scheme != "https" and not (issuer.scheme == "http" and loopback):
        return (
            f"oidc.issuer must be an https:// URL (http:// only on loopback), got {oidc.issuer!r}"
        )
    if issuer.query or issuer.fragment:
        return f"oidc.issuer must have no query or fragment, got {oidc.issuer!r}"
    if not oidc.client_id:
        return "oidc.client_id is required when oidc.issuer is set"
    if "openid" not in oidc.scope.split():
        return f"oidc.scope must include openid, got {oidc.scope!r}"
    if not [claim for claim in oidc.id_nat_claims if claim]:
        return "oidc.id_nat_claims must name at least one claim"
    if oidc.session_minutes < 1:
        return f"oidc.session_minutes must be 1 or more, got {oidc.session_minutes}"
    if oidc.leeway_seconds < 0 or not oidc.timeout_seconds > 0 or oidc.jwks_cache_seconds < 0:
        return (
            "oidc.leeway_seconds and oidc.jwks_cache_seconds must be 0 or more, "
            "oidc.timeout_seconds above 0"
        )
    return ""


def portal_url(settings: Settings) -> str:
    """The public address of the portal, without a trailing slash."""
    if settings.portal.public_url:
        return settings.portal.public_url.rstrip("/")
    return f"https://{settings.hostname}:{settings.ports.https}"
