"""Password hashes: argon2id as OWASP sets it, verified off the loop, and remembered briefly.

One hasher for every secret the hub keeps (mailbox passwords, patients'
passwords and activation codes). Its parameters are one of the equivalent
argon2id settings of OWASP's Password Storage Cheat Sheet: m = 19 MiB,
t = 2, p = 1 (about 21 ms of CPU on this project's two-core machines, where
the former t = 3, m = 64 MiB, p = 4 cost 180 ms). A hash made with other
parameters still verifies, and ``PasswordCheck.needs_rehash`` tells the
caller to store a new one.

Hashing runs in worker threads, at most ``HASH_SLOTS`` at once, so a burst
of logins cannot starve the event loop's other sessions nor hold many
argon2 buffers in memory.

The verified-credential cache plays the part of Dovecot's ``auth_cache``:
after a successful check, each process remembers, for ``cache_seconds``, an
HMAC (with a key drawn at start and never stored) of the account, its
stored hash and the password. A repeat login then costs one HMAC. The
stored hash is part of the key, so a password change (a new hash, read
from the database at each login) misses the cache at once in every
process; the account's state and the login throttle are read and decided
at every login, before the cache is asked. Failures are never cached, and
the cache holds no password nor anything reversible to one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
HASH_SLOTS = 2  # concurrent argon2 computations per process: one per core here

_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM)
_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _slot() -> asyncio.Semaphore:
    """This event loop's hashing slots (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        for old in [old for old in _slots if old.is_closed()]:
            del _slots[old]
        slots = _slots[loop] = asyncio.Semaphore(HASH_SLOTS)
    return slots


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of one verification: does it match, was argon2 spared, is a new hash due."""

    ok: bool
    cached: bool = False
    needs_rehash: bool = False

    def __bool__(self) -> bool:
        return self.ok


class CredentialCache:
    """Recently verified (account, stored hash, password) triples, as keyed hashes with an
    expiry."""

    def __init__(self, seconds: float = 300.0, size: int = 10_000) -> None:
        self.seconds = seconds
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def _digest(self, account: str, stored_hash: str, secret: str) -> bytes:
        material = f"{account}\0{stored_hash}\0{secret}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, material, hashlib.sha256).digest()

    def hit(self, account: str, stored_hash: str, secret: str) -> bool:
        """True when this exact triple was verified less than ``seconds`` ago."""
        if self.seconds <= 0:
            return False
        digest = self._digest(account, stored_hash, secret)
        expiry = self._entries.get(digest)
        if expiry is None:
            return False
        if expiry < time.monotonic():
            del self._entries[digest]
            return False
        return True

    def remember(self, account: str, stored_hash: str, secret: str) -> None:
        if self.seconds <= 0:
            return
        digest = self._digest(account, stored_hash, secret)
        self._entries[digest] = time.monotonic() + self.seconds
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


cache = CredentialCache()


def configure(cache_seconds: float) -> None:
    """Set the cache's lifetime (``[auth] cache_seconds``; 0 turns it off)."""
    cache.seconds = cache_seconds
    if cache_seconds <= 0:
        cache._entries.clear()


def hash_secret_now(secret: str) -> str:
    """An argon2id hash, on the calling thread (CLI, imports)."""
    return _hasher.hash(secret)


async def hash_secret(secret: str) -> str:
    """An argon2id hash, in a worker thread, at most ``HASH_SLOTS`` at once."""
    async with _slot():
        return await asyncio.to_thread(_hasher.hash, secret)


def _verify_now(stored_hash: str, secret: str) -> PasswordCheck:
    try:
        _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(False)
    return PasswordCheck(True, needs_rehash=_hasher.check_needs_rehash(stored_hash))


_DUMMY_HASH = _hasher.hash("no account has this password")


def verify_secret_now(stored_hash: str | None, secret: str, *, account: str = "") -> PasswordCheck:
    """``verify_secret`` on the calling thread."""
    if not stored_hash:
        _verify_now(_DUMMY_HASH, secret)  # the same cost whether or not the account exists
        return PasswordCheck(False)
    if account and cache.hit(account, stored_hash, secret):
        return PasswordCheck(
            True, cached=True, needs_rehash=_hasher.check_needs_rehash(stored_hash)
        )
    check = _verify_now(stored_hash, secret)
    if check.ok and account:
        cache.remember(account, stored_hash, secret)
    return check


async def verify_secret(
    stored_hash: str | None, secret: str, *, account: str = ""
) -> PasswordCheck:
    """Check ``secret`` against an argon2 hash; a missing hash costs the same and fails.

    With ``account`` (a stable name: a mailbox address, a patient id) a success
    is remembered for ``cache.seconds`` and a repeat is answered without argon2.
    """
    if stored_hash and account and cache.hit(account, stored_hash, secret):
        return PasswordCheck(
            True, cached=True, needs_rehash=_hasher.check_needs_rehash(stored_hash)
        )
    async with _slot():
        check = await asyncio.to_thread(_verify_now, stored_hash or _DUMMY_HASH, secret)
    if not stored_hash:
        return PasswordCheck(False)
    if check.ok and account:
        cache.remember(account, stored_hash, secret)
    return check
