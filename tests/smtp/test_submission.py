"""Submission on 2587 (STARTTLS) and 2465 (implicit TLS): TLS first, then AUTH, then MAIL."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PASSWORD, PATIENT, Hub, WireClient, message


async def test_starttls_auth_and_delivery_readable_in_the_store(hub: Hub) -> None:
    client = await hub.login_client()
    raw = message(DOCTOR, OTHER_DOCTOR, subject="Avis cardiologique")
    errors, reply = await client.sendmail(DOCTOR, [OTHER_DOCTOR], raw)
    await client.quit()
    assert errors == {} and reply.startswith("2.0.0 Message accepted")
    inbox = await hub.stored(OTHER_DOCTOR)
    assert len(inbox) == 1
    stored = inbox[0]
    assert stored.subject == "Avis cardiologique"
    assert stored.raw.endswith(raw[raw.index(b"\r\n\r\n") :])  # the body kept byte for byte
    assert (
        b"Authentication-Results: localhost; auth=pass smtp.auth=" + DOCTOR.encode() in stored.raw
    )
    sent = await hub.stored(DOCTOR, "Sent")
    assert [m.id for m in sent] == [stored.id]


async def test_implicit_tls_offers_auth_and_accepts(hub: Hub) -> None:
    client = hub.client("submission_tls")
    await client.connect()
    await client.ehlo()
    assert "auth" in client.esmtp_extensions and "starttls" not in client.esmtp_extensions
    await client.login(DOCTOR, PASSWORD)
    errors, _ = await client.sendmail(DOCTOR, [OTHER_DOCTOR], message(DOCTOR, OTHER_DOCTOR))
    await client.quit()
    assert errors == {}


async def test_auth_and_mail_refused_before_starttls(hub: Hub) -> None:
    client = hub.client()
    await client.connect()
    await client.ehlo()
    assert "auth" not in client.esmtp_extensions
    code, text = await client.execute_command(b"AUTH", b"PLAIN", b"AGpkAHg=")
    assert code == 530 and "STARTTLS" in text
    code, _ = await client.execute_command(b"MAIL", b"FROM:<" + DOCTOR.encode() + b">")
    assert code == 530
    await client.quit()


async def test_wrong_password_answers_535_without_hanging(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = (
        0  # aiosmtplib tries each mechanism: no wait between
    )
    for listener in ("submission", "submission_tls"):
        client = hub.client(listener, timeout=5)
        await client.connect()
        if listener == "submission":
            await client.starttls()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
            await asyncio.wait_for(client.login(DOCTOR, "wrong password"), 5)
        assert refused.value.code == 535
        for method in (client.auth_login, client.auth_plain):
            with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                await asyncio.wait_for(method("nobody@mss.localhost", "x"), 5)
        await client.quit()


async def test_mail_before_auth_and_foreign_sender_refused(hub: Hub) -> None:
    client = hub.client()
    await client.connect()
    await client.starttls()
    await client.ehlo()
    code, text = await client.execute_command(b"MAIL", b"FROM:<" + DOCTOR.encode() + b">")
    assert (code, text) == (530, "5.7.0 Authentication required")
    await client.login(DOCTOR, PASSWORD)
    code, text = await client.execute_command(b"MAIL", b"FROM:<" + OTHER_DOCTOR.encode() + b">")
    assert code == 553 and f"is not owned by the authenticated mailbox {DOCTOR}" in text
    await client.quit()


async def test_from_header_must_be_the_sender(hub: Hub) -> None:
    client = await hub.login_client()
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await client.sendmail(DOCTOR, [OTHER_DOCTOR], message(OTHER_DOCTOR, OTHER_DOCTOR))
    assert (
        refused.value.code == 550
        and "From header <anne.martin@mss.localhost>" in refused.value.message
    )
    await client.quit()
    assert await hub.stored(OTHER_DOCTOR) == []


async def test_patient_mailbox_cannot_log_in_over_smtp(hub: Hub) -> None:
    client = hub.client()
    await client.connect()
    await client.starttls()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        await client.login(PATIENT, PASSWORD)
    assert "patient portal" in refused.value.message
    await client.quit()


async def test_pipelining_a_whole_transaction(hub: Hub) -> None:
    client = await WireClient.open(hub)
    raw = message(DOCTOR, OTHER_DOCTOR, subject="pipelined")
    # MAIL, a bad RCPT, a good RCPT and DATA in one write, then the four replies in order.
    client.send(
        (
            f"MAIL FROM:<{DOCTOR}>\r\nRCPT TO:<nobody@mss.localhost>\r\n"
            f"RCPT TO:<{OTHER_DOCTOR}>\r\nDATA\r\n"
        ).encode()
    )
    replies = [await client.reply() for _ in range(4)]
    assert [code for code, _ in replies] == [250, 550, 250, 354]
    assert replies[1][1] == "5.1.1 No such mailbox: <nobody@mss.localhost>"
    client.send(raw + b".\r\nQUIT\r\n")
    assert (await client.reply())[0] == 250
    assert (await client.reply())[0] == 221
    await client.close()
    assert [m.subject for m in await hub.stored(OTHER_DOCTOR)] == ["pipelined"]


async def test_client_certificate_logs_in_an_app_mailbox(hub: Hub) -> None:
    from tests.smtp.conftest import APP

    identity = hub.pki.issue_client(APP)
    client = hub.client("submission_tls", identity=identity)
    await client.connect()
    errors, _ = await client.sendmail(APP, [DOCTOR], message(APP, DOCTOR, subject="Convocation"))
    await client.quit()
    assert errors == {}
    assert [m.subject for m in await hub.stored(DOCTOR)] == ["Convocation"]
