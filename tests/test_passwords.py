"""Password hashes: OWASP's argon2id parameters, a rehash when they differ, the
verified-credential cache."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher, extract_parameters

from mss.crypto import passwords
from mss.crypto.passwords import CredentialCache, hash_secret, verify_secret

SECRET = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> CredentialCache:
    cache = CredentialCache(seconds=300)
    monkeypatch.setattr(passwords, "cache", cache)
    return cache


async def test_new_hashes_use_owasp_argon2id_parameters() -> None:
    params = extract_parameters(await hash_secret(SECRET))
    assert (params.type.name, params.time_cost, params.memory_cost, params.parallelism) == (
        "ID",
        2,
        19 * 1024,
        1,
    )


async def test_an_old_hash_still_verifies_and_asks_for_a_new_one() -> None:
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(SECRET)
    check = await verify_secret(old, SECRET, account="jean.dupont@mss.localhost")
    assert check.ok and check.needs_rehash
    current = await verify_secret(await hash_secret(SECRET), SECRET, account="x@mss.localhost")
    assert current.ok and not current.needs_rehash


async def test_a_repeat_login_is_answered_from_the_cache(fresh_cache: CredentialCache) -> None:
    stored = await hash_secret(SECRET)
    first = await verify_secret(stored, SECRET, account="jean.dupont@mss.localhost")
    again = await verify_secret(stored, SECRET, account="jean.dupont@mss.localhost")
    assert (first.ok, first.cached) == (True, False)
    assert (again.ok, again.cached) == (True, True)
    other_account = await verify_secret(stored, SECRET, account="paul.martin@mss.localhost")
    assert (other_account.ok, other_account.cached) == (True, False)


async def test_failures_are_never_cached_and_a_new_hash_misses(
    fresh_cache: CredentialCache,
) -> None:
    stored = await hash_secret(SECRET)
    for _ in range(2):
        wrong = await verify_secret(stored, "not the password", account="jean.dupont@mss.localhost")
        assert (wrong.ok, wrong.cached) == (False, False)
    assert len(fresh_cache) == 0
    assert (await verify_secret(stored, SECRET, account="jean.dupont@mss.localhost")).ok
    changed = await hash_secret("a brand new passphrase 42")
    stale = await verify_secret(changed, SECRET, account="jean.dupont@mss.localhost")
    assert (stale.ok, stale.cached) == (False, False)


async def test_the_cache_holds_no_password_and_expires(fresh_cache: CredentialCache) -> None:
    stored = await hash_secret(SECRET)
    await verify_secret(stored, SECRET, account="jean.dupont@mss.localhost")
    (digest,) = list(fresh_cache._entries)
    assert SECRET.encode() not in digest and len(digest) == 32
    fresh_cache.seconds = 0.05
    fresh_cache._entries[digest] = 0.0  # as if remembered long ago
    assert not (await verify_secret(stored, SECRET, account="jean.dupont@mss.localhost")).cached


async def test_an_unknown_account_fails_after_the_same_work() -> None:
    check = await verify_secret(None, SECRET, account="nobody@mss.localhost")
    assert (check.ok, check.cached) == (False, False)


async def test_a_burst_of_checks_runs_at_most_hash_slots_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running, peak = 0, 0
    real = passwords._verify_now

    def counting(stored: str, secret: str) -> passwords.PasswordCheck:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            return real(stored, secret)
        finally:
            running -= 1

    monkeypatch.setattr(passwords, "_verify_now", counting)
    monkeypatch.setattr(passwords, "_slots", {})
    stored = await hash_secret(SECRET)
    checks = await asyncio.gather(*(verify_secret(stored, f"wrong {i}") for i in range(8)))
    assert not any(checks)
    assert peak <= passwords.HASH_SLOTS
