"""IMAP LOGIN and AUTHENTICATE PLAIN under the one login throttle, spoken with imaplib.

The throttle is the one SMTP AUTH, the portal and the document API use
(``mss.policy.login``): 5 failures lock the account from that address, and
even the right password is then ``NO [AUTHENTICATIONFAILED]`` with the lock
sentence; from another address (127.0.0.2) the owner logs in.
"""

from __future__ import annotations

import asyncio
import imaplib
import socket
import ssl
from typing import Any

from tests.imap.conftest import PASSWORD, RunningImap

USER = "jean.dupont@mss.localhost"
LOCKED = (
    "[AUTHENTICATIONFAILED] Too many failed logins: this account is locked from your "
    "address for 15 minutes"
)


class _ImapFrom(imaplib.IMAP4_SSL):
    """imaplib over implicit TLS, its socket bound to a chosen loopback address."""

    def __init__(self, imap: RunningImap, context: ssl.SSLContext, source: str) -> None:
        self.source = source
        super().__init__(imap.host, imap.tls_port, ssl_context=context, timeout=10)

    def _create_socket(self, timeout: Any) -> socket.socket:
        sock = socket.create_connection(
            (self.host, self.port), timeout, source_address=(self.source, 0)
        )
        return self.ssl_context.wrap_socket(sock, server_hostname="localhost")


def _answers(
    imap: RunningImap,
    context: ssl.SSLContext,
    source: str,
    tries: list[tuple[str, str]],
    mechanism: str = "LOGIN",
) -> list[str]:
    """Each (user, password) tried on one connection: "OK" or the refusal's text."""
    client = _ImapFrom(imap, context, source)
    out = []
    try:
        for user, password in tries:
            try:
                if mechanism == "PLAIN":
                    client.authenticate(
                        "PLAIN", lambda _, u=user, p=password: f"\0{u}\0{p}".encode()
                    )
                else:
                    client.login(user, password)
                out.append("OK")
                break
            except imaplib.IMAP4.error as refused:
                text = refused.args[0]
                out.append(text.decode() if isinstance(text, bytes) else str(text))
    finally:
        client.shutdown()
    return out


async def _try(
    imap: RunningImap,
    context: ssl.SSLContext,
    tries: list[tuple[str, str]],
    *,
    source: str = "127.0.0.1",
    mechanism: str = "LOGIN",
) -> list[str]:
    return await asyncio.to_thread(_answers, imap, context, source, tries, mechanism)


async def test_twenty_wrong_logins_then_the_right_password_is_refused_with_the_lock(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    imap.settings.login_throttle.back_off_seconds = 0
    answers = await _try(imap, client_ssl, [(USER, f"guess {n}") for n in range(20)])
    assert answers[0] == "[AUTHENTICATIONFAILED] wrong address or password"
    assert all(answer.startswith(LOCKED) for answer in answers[4:])
    [answer] = await _try(imap, client_ssl, [(USER, PASSWORD)])
    assert answer.startswith(LOCKED)
    [answer] = await _try(imap, client_ssl, [(USER, PASSWORD)], mechanism="PLAIN")
    assert answer.startswith(LOCKED)


async def test_authenticate_plain_failures_count_too(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    imap.settings.login_throttle.back_off_seconds = 0
    answers = await _try(
        imap, client_ssl, [(USER, f"guess {n}") for n in range(5)], mechanism="PLAIN"
    )
    assert answers[-1].startswith(LOCKED)
    [answer] = await _try(imap, client_ssl, [(USER, PASSWORD)])
    assert answer.startswith(LOCKED)


async def test_a_lock_from_one_address_leaves_the_owner_free_from_another(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    imap.settings.login_throttle.back_off_seconds = 0
    await _try(imap, client_ssl, [(USER, f"guess {n}") for n in range(20)])
    assert await _try(imap, client_ssl, [(USER, PASSWORD)], source="127.0.0.2") == ["OK"]
    [answer] = await _try(imap, client_ssl, [(USER, PASSWORD)])
    assert answer.startswith(LOCKED)


async def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    imap.settings.login_throttle.back_off_seconds = 0
    [known] = await _try(imap, client_ssl, [(USER, "not it at all")])
    [unknown] = await _try(
        imap, client_ssl, [("nobody.here@mss.localhost", "not it at all")], source="127.0.0.3"
    )
    assert known == unknown == "[AUTHENTICATIONFAILED] wrong address or password"


async def test_a_lock_ends_and_the_right_password_logs_in_again(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    imap.settings.login_throttle.back_off_seconds = 0
    imap.settings.login_throttle.lock_minutes = (
        0.02  # 1.2 s: the lock's end, not its length, is tested
    )
    answers = await _try(
        imap, client_ssl, [(USER, f"guess {n}") for n in range(5)] + [(USER, PASSWORD)]
    )
    assert answers[-1].startswith("[AUTHENTICATIONFAILED] Too many failed logins")
    await asyncio.sleep(1.5)
    assert await _try(imap, client_ssl, [(USER, PASSWORD)]) == ["OK"]
