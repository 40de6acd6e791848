"""The same checks with a real command-line client, swaks (Debian package)."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PASSWORD, Hub

SWAKS = shutil.which("swaks")


@pytest.fixture(autouse=True)
def swaks_installed() -> None:
    """These tests need the real client: a missing swaks is a failure, never a skip."""
    assert SWAKS is not None, "swaks is not installed: apt-get install swaks (.ci/run does)"


async def swaks(hub: Hub, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        SWAKS or "swaks",
        "--server",
        "localhost",
        "--tls-verify",
        "--tls-ca-path",
        str(hub.pki.root_cert),
        "--from",
        DOCTOR,
        "--to",
        OTHER_DOCTOR,
        "--timeout",
        "10",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(errors="replace")


async def test_starttls_auth_login_pipelining(hub: Hub) -> None:
    code, out = await swaks(
        hub,
        "--port",
        str(hub.ports["submission"]),
        "--tls",
        "--pipeline",
        "--auth",
        "LOGIN",
        "--auth-user",
        DOCTOR,
        "--auth-password",
        PASSWORD,
        "--header",
        "Subject: via swaks",
    )
    assert code == 0, out
    assert "250 2.0.0 Message accepted for delivery" in out
    assert [m.subject for m in await hub.stored(OTHER_DOCTOR)] == ["via swaks"]


async def test_implicit_tls_auth_plain(hub: Hub) -> None:
    code, out = await swaks(
        hub,
        "--port",
        str(hub.ports["submission_tls"]),
        "--tls-on-connect",
        "--auth",
        "PLAIN",
        "--auth-user",
        DOCTOR,
        "--auth-password",
        PASSWORD,
    )
    assert code == 0, out


async def test_wrong_password_535(hub: Hub) -> None:
    code, out = await swaks(
        hub,
        "--port",
        str(hub.ports["submission_tls"]),
        "--tls-on-connect",
        "--auth",
        "LOGIN",
        "--auth-user",
        DOCTOR,
        "--auth-password",
        "wrong",
    )
    assert code != 0 and "535 5.7.8 Authentication credentials invalid" in out


async def test_no_auth_before_starttls(hub: Hub) -> None:
    code, out = await swaks(
        hub,
        "--port",
        str(hub.ports["submission"]),
        "--auth",
        "PLAIN",
        "--auth-user",
        DOCTOR,
        "--auth-password",
        PASSWORD,
    )
    # AUTH is not even offered before STARTTLS, so swaks gives up without sending the password.
    assert code != 0 and "Host did not advertise authentication" in out
    assert "AUTH" not in out.split("-> EHLO", 1)[1].split("QUIT")[0]
