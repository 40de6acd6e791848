"""A password hashed with older argon2 parameters is hashed again, with OWASP's, at its next good
login."""

from __future__ import annotations

import aiosmtplib
import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import select, update

from mss.crypto import passwords
from mss.directory.models import Mailbox
from tests.smtp.conftest import DOCTOR, PASSWORD, Hub


async def _stored(hub: Hub) -> str:
    async with hub.db.read() as session:
        return str(
            await session.scalar(select(Mailbox.password_hash).where(Mailbox.address == DOCTOR))
        )


async def test_an_old_hash_is_replaced_at_the_next_good_login_only(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0  # the wrong try below makes no wait
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
    async with hub.db.write() as session:
        await session.execute(
            update(Mailbox).where(Mailbox.address == DOCTOR).values(password_hash=old)
        )

    wrong = hub.client()
    await wrong.connect()
    await wrong.starttls()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await wrong.login(DOCTOR, "not the password at all")
    wrong.close()
    assert await _stored(hub) == old  # a failed login changes nothing

    client = await hub.login_client(DOCTOR)
    await client.quit()
    new = await _stored(hub)
    params = extract_parameters(new)
    assert new != old and (params.time_cost, params.memory_cost, params.parallelism) == (
        passwords.TIME_COST,
        passwords.MEMORY_COST_KIB,
        passwords.PARALLELISM,
    )
    again = await hub.login_client(DOCTOR)  # the new hash verifies the same password
    await again.quit()
    assert await _stored(hub) == new


async def test_an_unknown_address_costs_the_same_argon2_work_as_a_wrong_password(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No user enumeration by timing: both failures run exactly one argon2 verification."""
    verified: list[str] = []
    real = passwords._verify_now

    def counting(stored: str, secret: str) -> passwords.PasswordCheck:
        verified.append(stored)
        return real(stored, secret)

    monkeypatch.setattr(passwords, "_verify_now", counting)
    hub.settings.login_throttle.back_off_seconds = 0
    costs = []
    for login in (DOCTOR, "nobody.here@mss.localhost"):
        verified.clear()
        client = hub.client()
        await client.connect()
        await client.starttls()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
            await client.login(login, "not the password at all")
        client.close()
        costs.append(len(verified))
        assert refused.value.code == 535
    assert costs[0] == costs[1] >= 1
