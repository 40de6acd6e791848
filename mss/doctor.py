"""``mss doctor``: one line per check, OK or a sentence saying what is wrong."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from sqlalchemy import text

from mss.command import safe_url
from mss.config import Settings
from mss.db import Database, utcnow

EXPIRY_WARNING = dt.timedelta(days=30)


@dataclass(frozen=True)
class Check:
    ok: bool
    line: str

    def __str__(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.line}"


def check_config(settings: Settings) -> Check:
    return Check(True, f"configuration: {settings.source}, data in {settings.data_path.resolve()}")


async def check_database(settings: Settings) -> Check:
    from alembic.script import ScriptDirectory

    from mss.migrate import alembic_config

    url = settings.effective_database_url
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    db = Database(url)
    try:
        async with db.read() as session:
            current = (
                await asyncio.wait_for(
                    session.execute(text("SELECT version_num FROM alembic_version")), 10
                )
            ).scalar_one_or_none()
    except Exception as exc:  # noqa: BLE001 - reported as a sentence
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = reason[0] if reason else type(exc).__name__
        if "alembic_version" in first:
            return Check(False, f"database {safe_url(url)}: no schema yet, run 'mss db upgrade'")
        return Check(False, f"database {safe_url(url)}: unreachable ({first})")
    finally:
        await db.dispose()
    if current != head:
        return Check(
            False,
            f"database {safe_url(url)}: schema at {current}, code expects {head}: run 'mss "
            f"db upgrade'",
        )
    return Check(True, f"database {safe_url(url)}: reachable, schema at {head}")


def check_certificate(label: str, path: Path, *, now: dt.datetime | None = None) -> Check:
    now = now or utcnow()
    if not path.is_file():
        return Check(False, f"{label}: {path} is missing (run 'mss pki init')")
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        return Check(False, f"{label}: {path} is not a PEM certificate ({exc})")
    expires = cert.not_valid_after_utc
    if expires <= now:
        return Check(False, f"{label}: {path} expired on {expires:%Y-%m-%d}")
    if expires - now < EXPIRY_WARNING:
        return Check(False, f"{label}: {path} expires soon, on {expires:%Y-%m-%d}: renew it")
    return Check(True, f"{label}: valid until {expires:%Y-%m-%d} ({cert.subject.rfc4514_string()})")


def check_certificates(settings: Settings) -> list[Check]:
    pki = settings.pki_dir
    checks = [check_certificate("server certificate", settings.server_cert_file)]
    key = settings.server_key_file
    checks.append(
        Check(key.is_file(), f"server key: {key}" + ("" if key.is_file() else " is missing"))
    )
    for label, name in (
        ("root CA", "root-ca.pem"),
        ("intermediate CA", "intermediate-ca.pem"),
        ("operator certificate", "operator.pem"),
    ):
        checks.append(check_certificate(label, pki / name))
    crl = settings.crl_path
    if not crl.is_file():
        checks.append(Check(False, f"revocation list: {crl} is missing (run 'mss pki crl')"))
    else:
        try:
            loaded = x509.load_pem_x509_crl(crl.read_bytes())
        except ValueError as exc:
            checks.append(Check(False, f"revocation list: {crl} is not a PEM CRL ({exc})"))
        else:
            next_update = loaded.next_update_utc
            if next_update is not None and next_update <= utcnow():
                checks.append(
                    Check(
                        False,
                        f"revocation list: {crl} is stale since {next_update:%Y-%m-%d}: run "
                        f"'mss pki crl'",
                    )
                )
            else:
                checks.append(
                    Check(
                        True,
                        f"revocation list: {len(loaded)} revoked, next update "
                        f"{next_update:%Y-%m-%d %H:%M}"
                        if next_update
                        else "revocation list: present",
                    )
                )
    return checks


def check_port(settings: Settings, key: str, label: str) -> Check:
    port = getattr(settings.ports, key)
    host = settings.bind
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        if probe.connect_ex((host, port)) == 0:
            return Check(True, f"port {port} ({label}): listening")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Check(
                    False, f"port {port} ({label}): taken by another program that does not answer"
                )
            return Check(False, f"port {port} ({label}): cannot be used ({exc.strerror})")
    return Check(True, f"port {port} ({label}): free")


def check_ports(settings: Settings) -> list[Check]:
    from mss.ports import PORT_NAMES

    return [
        check_port(settings, key, label)
        for key, label in PORT_NAMES.items()
        if getattr(settings.listeners, key)
    ]


def check_logins(settings: Settings) -> Check:
    """The password hashing and the verified-credential cache in force
    (``mss.crypto.passwords``)."""
    from mss.crypto import passwords

    t = settings.login_throttle
    cache = (
        f"verified logins remembered {settings.auth.cache_seconds:g} s per process"
        if settings.auth.cache_seconds > 0
        else "no verified-login cache ([auth] cache_seconds = 0)"
    )
    return Check(
        settings.auth.cache_seconds >= 0,
        f"logins: argon2id m={passwords.MEMORY_COST_KIB} KiB t={passwords.TIME_COST} "
        f"p={passwords.PARALLELISM}, {cache}; lock after {t.lock_after} failures from one "
        f"address for {t.lock_minutes:g} min",
    )


async def check_folder_counters(settings: Settings) -> Check:
    """Every folder's stored counters (EXISTS, UNSEEN, RECENT, first unseen, keywords) against a
    recount of its entries (``mss.mailbox.counters``)."""
    from sqlalchemy import func, select

    from mss.mailbox import counters
    from mss.mailbox.models import Folder

    db = Database(settings.effective_database_url)
    try:
        async with db.read() as session:
            folders = (await session.execute(select(func.count(Folder.id)))).scalar_one()
            problems = await counters.verify(session)
    finally:
        await db.dispose()
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if problems[5:] else ""
        )
        return Check(False, f"folder counters: {shown}")
    return Check(True, f"folder counters: {folders} folders agree with their entries")


async def check_oidc(settings: Settings) -> Check:
    """The professionals' OpenID Connect provider answers: discovery and its keys
    (``mss.oidc``)."""
    from mss.config import portal_url
    from mss.oidc import OidcRefused, RelyingParty

    if not settings.oidc.enabled:
        return Check(True, "professional OpenID Connect login: off ([oidc] issuer is empty)")
    party = RelyingParty(settings.oidc, portal_url(settings))
    try:
        await party.metadata()
        keys = await party.keys()
    except OidcRefused as refused:
        return Check(False, f"OpenID Connect provider {party.issuer}: {refused.decision.sentence}")
    return Check(
        True,
        f"OpenID Connect provider {party.issuer}: discovery and {len(keys.keys)} signing "
        f"key(s); back to {party.redirect_uri}",
    )


def check_encryption(settings: Settings, *, now: dt.datetime | None = None) -> Check:
    """The hub mailboxes' S/MIME encryption certificates (none expired) and the ``openssl``
    command that opens AuthEnvelopedData and RSA-OAEP mail (``mss.crypto.decryption``)."""
    import shutil

    from mss.crypto.keys import load_certs
    from mss.crypto.pki import encryption_target

    folder = encryption_target(settings.pki_dir, "x@localhost").cert.parent
    certificates = sorted(folder.glob("*.pem")) if folder.is_dir() else []
    if not certificates:
        return Check(True, "S/MIME encryption: no mailbox has an encryption certificate")
    if shutil.which("openssl") is None:
        return Check(
            False,
            "S/MIME encryption: the openssl command is missing: AES-GCM and RSA-OAEP mail "
            "cannot be decrypted (apt-get install openssl)",
        )
    moment = now or utcnow()
    expired = [p.stem for p in certificates if load_certs(p)[0].not_valid_after_utc <= moment]
    if expired:
        return Check(
            False,
            f"S/MIME encryption: expired certificate of {', '.join(expired)}: renew it "
            "with 'mss pki issue ADDRESS --encryption'",
        )
    return Check(
        True, f"S/MIME encryption: {len(certificates)} mailbox certificates, openssl found"
    )


async def run_checks(settings: Settings) -> list[Check]:
    database = await check_database(settings)
    return [
        check_config(settings),
        database,
        *([await check_folder_counters(settings)] if database.ok else []),
        *check_certificates(settings),
        check_encryption(settings),
        check_logins(settings),
        await check_oidc(settings),
        *check_ports(settings),
    ]
