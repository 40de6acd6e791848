"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), with hmac and hashlib only."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
ISSUER = "Messagerie santé"


def new_secret() -> str:
    """A 160-bit secret in base32 without padding, as authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226: HMAC of the 8-byte counter, dynamic truncation, ``digits`` decimal digits."""
    mac = hmac.new(key, counter.to_bytes(8, "big"), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def time_step(when: dt.datetime) -> int:
    return int(when.timestamp()) // STEP_SECONDS


def totp(secret: str, when: dt.datetime, digits: int = DIGITS) -> str:
    """The code of ``when`` for a base32 ``secret``."""
    return hotp(_key(secret), time_step(when), digits)


def matching_step(secret: str, code: str, when: dt.datetime, window: int = 1) -> int | None:
    """The time step whose code ``code`` is: that of ``when`` or one either side (clock drift);
    else None."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != DIGITS:
        return None
    key, step = _key(secret), time_step(when)
    found = None
    for candidate in range(step - window, step + window + 1):  # every step compared: constant time
        if hmac.compare_digest(hotp(key, candidate), code):
            found = candidate
    return found


def verify(secret: str, code: str, when: dt.datetime, window: int = 1) -> bool:
    """True when ``code`` matches the step of ``when`` or one step either side (clock drift).

    This says nothing about reuse: the login keeps the last step accepted (``second_factor``).
    """
    return matching_step(secret, code, when, window) is not None


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (Key Uri Format)."""
    label = quote(f"{ISSUER}:{account}")
    query = urlencode(
        {
            "secret": secret,
            "issuer": ISSUER,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
