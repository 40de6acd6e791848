"""The STARTTLS port, LOGINDISABLED, AUTHENTICATE PLAIN, who may log in, and back-off."""

from __future__ import annotations

import asyncio
import base64
import ssl

from mss.db import Database
from mss.directory.models import MailboxKind
from tests.imap.conftest import PASSWORD, RunningImap, Wire, make_mailbox


async def test_plain_port_refuses_login_until_starttls(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    reader, writer = await asyncio.open_connection(imap.host, imap.port)
    wire = Wire(reader, writer)
    greeting = await wire.read_line()
    assert (
        greeting.startswith("* OK [CAPABILITY IMAP4rev1 ") and "STARTTLS LOGINDISABLED" in greeting
    )
    assert "AUTH=PLAIN" not in greeting
    await wire.check(
        f'a1 LOGIN jean.dupont@mss.localhost "{PASSWORD}"',
        """
a1 NO [PRIVACYREQUIRED] log in only after STARTTLS: passwords never travel in clear text
""",
    )
    await wire.check("a2 STARTTLS", "a2 OK Begin TLS negotiation now")
    await writer.start_tls(client_ssl, server_hostname="localhost")
    await wire.check(
        "a3 CAPABILITY",
        """
* CAPABILITY IMAP4rev1 SASL-IR LITERAL- ID ENABLE IDLE NAMESPACE AUTH=PLAIN
a3 OK CAPABILITY completed
""",
    )
    await wire.check(
        f'a4 LOGIN jean.dupont@mss.localhost "{PASSWORD}"',
        """
* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE SPECIAL-USE UNSELECT CHILDREN CONDSTORE QRESYNC MULTIAPPEND LIST-EXTENDED LIST-STATUS STATUS=SIZE
a4 OK Logged in
""",
    )
    await wire.close()


async def test_authenticate_plain_with_initial_response_and_continuation(wire: Wire) -> None:
    token = base64.b64encode(f"\0jean.dupont@mss.localhost\0{PASSWORD}".encode()).decode()
    await wire.check(f"a1 AUTHENTICATE PLAIN {token}", "* CAPABILITY {*}\na1 OK Logged in")
    await wire.check("a2 LOGOUT", "* BYE {*}\na2 OK LOGOUT completed")


async def test_authenticate_plain_continuation(wire: Wire) -> None:
    wire.send("a1 AUTHENTICATE PLAIN")
    assert await wire.read_line() == "+ \r\n"
    wire.send(base64.b64encode(f"\0jean.dupont@mss.localhost\0{PASSWORD}".encode()))
    assert (await wire.until_tagged("a1")).endswith("a1 OK Logged in\n")


async def test_patient_mailbox_cannot_log_in(db: Database, wire: Wire) -> None:
    await make_mailbox(db, "198017512345678@patient.mss.localhost", MailboxKind.PAT)
    await wire.check(
        f'a1 LOGIN 198017512345678@patient.mss.localhost "{PASSWORD}"',
        """
a1 NO [AUTHORIZATIONFAILED] Patient mailboxes are reached through the patient portal only
""",
    )


async def test_organisation_mailbox_logs_in(db: Database, wire: Wire) -> None:
    await make_mailbox(db, "cardiologie@mss.localhost", MailboxKind.ORG)
    await wire.login("cardiologie@mss.localhost")


async def test_wrong_password_then_back_off(imap: RunningImap, wire: Wire) -> None:
    imap.settings.login_throttle.back_off_seconds = 600  # a wait no test run outlasts
    await wire.check(
        'a1 LOGIN jean.dupont@mss.localhost "wrong"',
        """
a1 NO [AUTHENTICATIONFAILED] wrong address or password
""",
    )
    await wire.check(
        'a2 LOGIN jean.dupont@mss.localhost "wrong again"',
        """
a2 NO [AUTHENTICATIONFAILED] wrong address or password
""",
    )
    await wire.check(
        f'a3 LOGIN jean.dupont@mss.localhost "{PASSWORD}"',
        """
a3 NO [AUTHENTICATIONFAILED] Too many failed logins for this account: wait {*} seconds before trying again
""",
    )


async def test_unknown_user_gets_the_same_answer(wire: Wire) -> None:
    await wire.check(
        'a1 LOGIN nobody@mss.localhost "x"',
        """
a1 NO [AUTHENTICATIONFAILED] wrong address or password
""",
    )


async def test_commands_need_the_right_state(wire: Wire) -> None:
    await wire.check(
        "a1 SELECT INBOX", "a1 BAD SELECT is not allowed in the not authenticated state"
    )
    await wire.login()
    await wire.check("a2 FETCH 1 FLAGS", "a2 BAD FETCH is not allowed in the authenticated state")
    await wire.check("a3 LOGIN x y", "a3 BAD LOGIN is not allowed in the authenticated state")
