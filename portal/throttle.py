"""Increasing back-off, then a temporary lock, after failed passwords or codes.

One counter per account (``patient:<id>``) or, for an identifier that names
no account, per hashed identifier, so the answers do not tell which
identifiers exist. A success resets the counter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import LoginThrottle

FREE_FAILURES = 1  # the first failure costs nothing: everybody mistypes
LOCK_AFTER = 5
LOCK_MINUTES = 15
PARIS = ZoneInfo("Europe/Paris")


def account_key(patient_id: int) -> str:
    return f"patient:{patient_id}"


def identifier_key(kind: str, identifier: str) -> str:
    digest = hashlib.sha256(" ".join(identifier.lower().split()).encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


def delay_after(failures: int) -> dt.timedelta:
    """Wait imposed after ``failures`` consecutive failures: 0, 2, 4, 8 s..."""
    if failures <= FREE_FAILURES:
        return dt.timedelta(0)
    return dt.timedelta(seconds=2 ** (failures - FREE_FAILURES))


def paris_time(when: dt.datetime) -> str:
    return when.astimezone(PARIS).strftime("%H h %M")


def _locked_sentence(until: dt.datetime) -> str:
    return (f"Trop d'essais infructueux : par sécurité, la connexion à ce compte est bloquée pendant "
            f"{LOCK_MINUTES} minutes, jusqu'à {paris_time(until)} (heure de Paris). "
            "Vous pourrez réessayer ensuite.")


def _wait_sentence(seconds: int) -> str:
    return f"Par sécurité, attendez {seconds} secondes avant de réessayer."


async def refusal(session: AsyncSession, key: str, now: dt.datetime) -> str | None:
    """Why an attempt may not be made now (lock or back-off), or None."""
    row = await session.get(LoginThrottle, key)
    if row is None:
        return None
    if row.locked_until is not None and row.locked_until > now:
        return _locked_sentence(row.locked_until)
    if row.last_failure_at is not None:
        ready = row.last_failure_at + delay_after(row.failures)
        if ready > now:
            return _wait_sentence(max(1, int((ready - now).total_seconds() + 0.999)))
    return None


async def record_failure(session: AsyncSession, key: str, now: dt.datetime) -> str:
    """Count one failure; returns what the user must be told about the next attempt."""
    row = await session.get(LoginThrottle, key, with_for_update=True)
    if row is None:
        row = LoginThrottle(key=key, failures=0)
        session.add(row)
    if row.locked_until is not None and row.locked_until <= now:
        row.failures, row.locked_until = 0, None  # a lock served starts a new series
    row.failures += 1
    row.last_failure_at = now
    if row.failures >= LOCK_AFTER:
        row.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
        return _locked_sentence(row.locked_until)
    left = LOCK_AFTER - row.failures
    sentence = (f"Il vous reste {left} essai{'s' if left > 1 else ''} avant un blocage temporaire "
                f"de {LOCK_MINUTES} minutes.")
    wait = delay_after(row.failures)
    if wait:
        sentence += " " + _wait_sentence(int(wait.total_seconds()))
    return sentence


async def is_locked(session: AsyncSession, key: str, now: dt.datetime) -> bool:
    row = await session.get(LoginThrottle, key)
    return row is not None and row.locked_until is not None and row.locked_until > now


async def reset(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
