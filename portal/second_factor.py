"""The one-time code of the login: sent by SMS (or e-mail), or read from an enrolled TOTP app."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import update

from mss.config import Settings
from mss.db import Database
from mss.directory.models import Patient
from mss.directory.store import claim_totp_step
from mss.notify import send_email, sms_provider
from mss.policy.decision import OK, Decision
from mss.policy.one_time_code import SENT_CODE_ALREADY_USED, TOTP_ALREADY_USED, decide_totp_step
from mss.services import Services
from portal import totp
from portal.models import PortalSession

CODE_LIFETIME = dt.timedelta(minutes=5)
RESEND_AFTER = dt.timedelta(seconds=30)


def choose_factor(patient: Patient) -> str | None:
    """TOTP when enrolled, else SMS to the phone, else e-mail; None when the patient has none."""
    if patient.totp_secret:
        return "totp"
    if patient.phone:
        return "sms"
    if patient.email:
        return "email"
    return None


def choose_sent_factor(patient: Patient) -> str | None:
    """A code that is sent, never an app's: SMS to the phone on file, else e-mail; None without
    either (an activation without the letter proves the person holds the contact on file)."""
    if patient.phone:
        return "sms"
    if patient.email:
        return "email"
    return None


def _code_hash(row_salt: str, code: str) -> str:
    return hashlib.sha256(f"{row_salt}:{code}".encode()).hexdigest()


def issue_code(row: PortalSession, now: dt.datetime) -> str:
    """Put a fresh 6-digit code (hashed) on the half-open session; returns it to be sent."""
    code = f"{secrets.randbelow(10**6):06d}"
    row.code_hash = _code_hash(row.csrf_token, code)
    row.code_expires_at, row.code_sent_at = now + CODE_LIFETIME, now
    return code


def code_matches(row: PortalSession, patient: Patient, code: str, now: dt.datetime) -> bool:
    code = "".join(code.split())
    if row.factor == "totp":
        return bool(patient.totp_secret) and totp.verify(patient.totp_secret or "", code, now)
    if row.code_hash is None or row.code_expires_at is None or row.code_expires_at <= now:
        return False
    return hmac.compare_digest(row.code_hash, _code_hash(row.csrf_token, code))


async def spend_code(
    db: Database, row: PortalSession, patient: Patient, code: str, now: dt.datetime
) -> Decision:
    """Use up a code that ``code_matches``: refused when it was already used, even by a request in
    parallel.

    An app's code: its time step must come after the last one accepted for the patient
    (``totp_last_step``), recorded by a conditional UPDATE. A code sent by SMS or e-mail:
    its hash is taken off the session by a conditional UPDATE, so only one request gets it.
    """
    code = "".join(code.split())
    if row.factor == "totp":
        secret = patient.totp_secret or ""
        step = totp.matching_step(secret, code, now)
        if step is None:
            return TOTP_ALREADY_USED  # the caller checked it matched: the secret changed meanwhile
        decision = decide_totp_step(step, patient.totp_last_step)
        if not decision:
            return decision
        async with db.write() as session:
            claimed = await claim_totp_step(session, patient.id, secret, step)
        return OK if claimed else TOTP_ALREADY_USED
    sessions = PortalSession.__table__.c
    claim = (
        update(PortalSession.__table__)
        .where(
            sessions.token_hash == row.token_hash,
            sessions.code_hash == _code_hash(row.csrf_token, code),
        )
        .values(code_hash=None)
    )
    async with db.write() as session:
        claimed = (await session.execute(claim)).rowcount == 1  # type: ignore[attr-defined]
    return OK if claimed else SENT_CODE_ALREADY_USED


def code_expired(row: PortalSession, now: dt.datetime) -> bool:
    return row.factor != "totp" and row.code_expires_at is not None and row.code_expires_at <= now


def masked_phone(phone: str) -> str:
    digits = [ch for ch in phone if ch.isdigit()]
    return "•• •• •• " + "".join(digits[-2:]) if len(digits) >= 2 else "••"


def masked_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def where_sent(row: PortalSession, patient: Patient) -> str:
    if row.factor == "sms" and patient.phone:
        return f"par SMS au {masked_phone(patient.phone)}"
    if row.factor == "email" and patient.email:
        return f"par e-mail à {masked_email(patient.email)}"
    return ""


PURPOSES = {
    "connexion": ("Votre code de connexion", "Votre code de connexion à la messagerie santé"),
    "activation": (
        "Votre code pour activer votre compte",
        "Votre code pour activer votre messagerie santé sans le courrier",
    ),
}


async def send_code(
    settings: Settings,
    services: Services,
    row: PortalSession,
    patient: Patient,
    code: str,
    purpose: str = "connexion",
) -> None:
    subject, what = PURPOSES[purpose]
    text = (
        f"{what} : {code}. Il expire dans 5 minutes. "
        "Ne le communiquez à personne, même pas à un conseiller."
    )
    if row.factor == "sms" and patient.phone:
        await sms_provider(settings, services).send(patient.phone, text)
    elif row.factor == "email" and patient.email:
        await send_email(settings, patient.email, subject, text)
