"""A password hashed with older argon2 parameters is hashed again, with OWASP's, at its next good login."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import select, update

from mss.crypto import passwords
from mss.directory.models import Mailbox
from tests.smtp.conftest import DOCTOR, PASSWORD, Hub


async def _stored(hub: Hub) -> str:
    async with hub.db.read() as session:
        return str(await session.scalar(select(Mailbox.password_hash).where(Mailbox.address == DOCTOR)))


async def test_an_old_hash_is_replaced_at_the_next_good_login_only(hub: Hub) -> None:
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
    async with hub.db.write() as session:
        await session.execute(update(Mailbox).where(Mailbox.address == DOCTOR).values(password_hash=old))

    wrong = hub.client()
    await wrong.connect()
    try:
        await wrong.login(DOCTOR, "not the password at all")
    except Exception:  # noqa: BLE001 - a refusal is what this step wants
        pass
    finally:
        wrong.close()
    assert await _stored(hub) == old  # a failed login changes nothing

    client = await hub.login_client(DOCTOR)
    await client.quit()
    new = await _stored(hub)
    params = extract_parameters(new)
    assert new != old and (params.time_cost, params.memory_cost, params.parallelism) == (
        passwords.TIME_COST, passwords.MEMORY_COST_KIB, passwords.PARALLELISM)
    again = await hub.login_client(DOCTOR)  # the new hash verifies the same password
    await again.quit()
    assert await _stored(hub) == new
