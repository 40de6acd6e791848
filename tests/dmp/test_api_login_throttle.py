"""The document API's HTTP Basic under the one login throttle: 401 with the lock sentence."""

from __future__ import annotations

import base64

import aiohttp

from tests.dmp.conftest import PASSWORD, Api
from tests.dmp.test_api_matrix import SEARCH, outcome

LOGIN = "authorised@mss.localhost"
LOCKED = "Too many failed logins: this account is locked from your address for 15 minutes"


async def _search(
    api: Api, password: str, source: str = "127.0.0.1"
) -> tuple[int, str, dict[str, str]]:
    token = base64.b64encode(f"{LOGIN}:{password}".encode()).decode()
    connector = aiohttp.TCPConnector(ssl=api.context(), local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as client,
        client.get(api.url + SEARCH, headers={"Authorization": f"Basic {token}"}) as response,
    ):
        body = await response.read()
        return (
            response.status,
            outcome(body) if response.status != 200 else "",
            dict(response.headers),
        )


async def test_twenty_wrong_passwords_then_the_right_one_is_401_with_the_lock(api: Api) -> None:
    api.world.settings.login_throttle.back_off_seconds = 0
    answers = [await _search(api, f"guess {n}") for n in range(20)]
    assert {status for status, _, _ in answers} == {401}
    assert answers[0][1] == "wrong mailbox address or password"
    assert all(text.startswith(LOCKED) for _, text, _ in answers[4:])
    status, text, headers = await _search(api, PASSWORD)
    assert (
        status == 401
        and text.startswith(LOCKED)
        and headers["WWW-Authenticate"].startswith("Basic")
    )


async def test_a_lock_from_one_address_leaves_the_professional_free_from_another(api: Api) -> None:
    api.world.settings.login_throttle.back_off_seconds = 0
    for n in range(5):
        await _search(api, f"guess {n}")
    status, _, _ = await _search(api, PASSWORD, source="127.0.0.2")
    assert status == 200
    status, text, _ = await _search(api, PASSWORD)
    assert status == 401 and text.startswith(LOCKED)


async def test_failures_on_other_protocols_count_here(api: Api) -> None:
    """One account, one series: what SMTP or IMAP counted for the mailbox locks the API too."""
    from mss.db import utcnow
    from mss.login_throttle import Attempt, LoginThrottle, mailbox_account

    api.world.settings.login_throttle.back_off_seconds = 0
    throttle = LoginThrottle(api.world.db, api.world.settings, protocol="api")
    for _ in range(5):
        await throttle.failed(Attempt(mailbox_account(LOGIN.upper()), "127.0.0.1"), utcnow())
    status, text, _ = await _search(api, PASSWORD)
    assert status == 401 and text.startswith(LOCKED)
