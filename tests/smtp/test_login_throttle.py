"""SMTP AUTH under the one login throttle (pen test finding 4), spoken with smtplib.

20 wrong AUTH PLAIN used to be answered at a steady pace and the right password
then logged in. Now the account is locked from that address: even the right
password gets 535 5.7.8 with the lock sentence, while its owner, from another
address (127.0.0.2), still logs in. The thresholds come from
``[login_throttle]``; the tests switch the back-off off so nothing waits.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib

from tests.smtp.conftest import DOCTOR, PASSWORD, Hub

LOCKED = "5.7.8 Too many failed logins: this account is locked from your address for 15 minutes"


def _plain(login: str, password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0{login}\0{password}".encode()).decode()


def _session(hub: Hub, source: str, commands: list[tuple[str, str]]) -> list[tuple[int, str]]:
    """One implicit-TLS session from ``source``: EHLO, then each command; every reply."""
    with smtplib.SMTP_SSL(
        "localhost",
        hub.ports["submission_tls"],
        context=hub.client_tls(),
        source_address=(source, 0),
        timeout=10,
    ) as client:
        client.ehlo("client.test")
        replies = []
        for verb, args in commands:
            code, text = client.docmd(verb, args)
            replies.append((code, text.decode()))
        return replies


async def _over_the_wire(
    hub: Hub, commands: list[tuple[str, str]], source: str = "127.0.0.1"
) -> list[tuple[int, str]]:
    return await asyncio.to_thread(_session, hub, source, commands)


async def test_twenty_wrong_auth_plain_then_the_right_one_is_refused_with_the_lock(
    hub: Hub,
) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    wrong = [("AUTH", _plain(DOCTOR, f"guess {n}")) for n in range(20)]
    replies = await _over_the_wire(hub, wrong)
    assert [code for code, _ in replies] == [535] * 20
    assert replies[0][1] == "5.7.8 Authentication credentials invalid"
    assert all(text.startswith(LOCKED) for _, text in replies[4:])  # the 5th failure set the lock
    [(code, text)] = await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, PASSWORD))])
    assert code == 535 and text.startswith(LOCKED)


async def test_auth_login_is_throttled_with_the_same_lock(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, f"guess {n}")) for n in range(5)])
    user, password = (base64.b64encode(text.encode()).decode() for text in (DOCTOR, PASSWORD))
    replies = await _over_the_wire(hub, [("AUTH", f"LOGIN {user}"), (password, "")])
    assert replies[0][0] == 334
    assert replies[1][0] == 535 and replies[1][1].startswith(LOCKED)


async def test_a_lock_from_one_address_does_not_lock_the_owner_out_from_another(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, f"guess {n}")) for n in range(20)])
    [(code, _)] = await _over_the_wire(
        hub, [("AUTH", _plain(DOCTOR, PASSWORD))], source="127.0.0.2"
    )
    assert code == 235
    [(code, text)] = await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, PASSWORD))])
    assert code == 535 and text.startswith(
        LOCKED
    )  # the owner's success does not lift the attacker's lock


async def test_after_failures_the_owner_waits_the_back_off_at_most(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 600  # the wait, long enough for any test run
    hub.settings.login_throttle.max_back_off_seconds = 600
    await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, f"guess {n}")) for n in range(2)])
    [(code, text)] = await _over_the_wire(
        hub, [("AUTH", _plain(DOCTOR, PASSWORD))], source="127.0.0.2"
    )
    assert code == 454 and text.startswith("4.7.0 Too many failed logins for this account: wait ")


async def test_an_address_trying_many_accounts_is_locked_for_all(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    hub.settings.login_throttle.source_lock_after = 6
    spray = [("AUTH", _plain(f"user{n}@mss.localhost", "123456")) for n in range(6)]
    replies = await _over_the_wire(hub, spray)
    assert replies[-1][1].startswith("5.7.8 Too many failed logins from your address")
    [(code, text)] = await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, PASSWORD))])
    assert code == 535 and "from your address" in text


async def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    [(known_code, known)] = await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, "not it at all"))])
    [(unknown_code, unknown)] = await _over_the_wire(
        hub, [("AUTH", _plain("nobody.here@mss.localhost", "not it at all"))], source="127.0.0.3"
    )
    assert (
        (known_code, known)
        == (unknown_code, unknown)
        == (535, "5.7.8 Authentication credentials invalid")
    )


async def test_a_lock_ends_and_the_right_password_logs_in_again(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    # 6 s: the lock's end, not its length, is tested; long enough that the six logins below
    # (argon2 each) fall inside it on a loaded machine.
    hub.settings.login_throttle.lock_minutes = 0.1
    replies = await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, f"guess {n}")) for n in range(5)])
    assert replies[-1][1].startswith("5.7.8 Too many failed logins")
    [(code, _)] = await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, PASSWORD))])
    assert code == 535
    await asyncio.sleep(6.5)
    [(code, text)] = await _over_the_wire(hub, [("AUTH", _plain(DOCTOR, PASSWORD))])
    assert (code, text) == (235, "2.7.0 Authentication successful")
