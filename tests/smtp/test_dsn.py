"""A failure after acceptance becomes a DSN (RFC 3464) in the sender's INBOX, in French and
English."""

from __future__ import annotations

from sqlalchemy import update

from mss.directory.models import Patient, PatientState
from mss.smtp_gateway.dsn import as_email
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PATIENT, Hub, WireClient, signed


async def test_patient_closed_between_rcpt_and_data_gets_a_dsn(hub: Hub) -> None:
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, [PATIENT, OTHER_DOCTOR], subject="Résultats")
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>".encode()))[0] == 250
    assert (await client.command(f"RCPT TO:<{PATIENT}>".encode()))[0] == 250
    assert (await client.command(f"RCPT TO:<{OTHER_DOCTOR}>".encode()))[0] == 250
    async with hub.db.write() as session:  # the account closes while the client is talking
        await session.execute(
            update(Patient)
            .where(Patient.ins == PATIENT.split("@")[0])
            .values(state=PatientState.CLOSED)
        )
    assert (await client.command(b"DATA"))[0] == 354
    client.send(raw + b".\r\n")
    assert (await client.reply())[0] == 250
    await client.close()
    assert await hub.stored(PATIENT) == []
    assert [m.subject for m in await hub.stored(OTHER_DOCTOR)] == ["Résultats"]
    await hub.runner.drain()
    await hub.runner.drain()  # a rerun must not deliver the DSN twice
    inbox = await hub.stored(DOCTOR)
    assert len(inbox) == 1
    dsn = as_email(inbox[0].raw)
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    text = dsn.get_body(("plain",)).get_content()
    assert f"{PATIENT} : Le compte patient <{PATIENT}> est clôturé (5.2.1)" in text
    assert f"{PATIENT}: The patient account <{PATIENT}> is closed (5.2.1)" in text
    status = next(
        part for part in dsn.walk() if part.get_content_type() == "message/delivery-status"
    )
    blocks = status.get_payload()
    assert blocks[1]["Final-Recipient"] == f"rfc822; {PATIENT}" and blocks[1]["Status"] == "5.2.1"
    headers = next(p for p in dsn.walk() if p.get_content_type() == "text/rfc822-headers")
    assert "Subject: Résultats" in headers.get_payload(decode=True).decode()


async def test_dsn_parameters_on_the_wire(hub: Hub) -> None:
    """RFC 3461: DSN advertised; RET, ENVID, NOTIFY, ORCPT taken in any case, others still 555."""
    client = await WireClient.open(hub)
    assert (await client.command(f"MAIL FROM:<{DOCTOR}> ret=hdrs ENVID=QQ+2B1".encode()))[0] == 250
    assert (
        await client.command(
            f"RCPT TO:<{PATIENT}> notify=failure,delay ORCPT=rfc822;{PATIENT}".encode()
        )
    )[0] == 250
    for bad, code in (
        (b"ORCPT=rfc822", 501),
        (b"NOTIFY=NEVER,FAILURE", 501),
        (b"ORCPT=rfc822;a+ZZ@b", 501),
        (b"NOTIFY=NEVER NOTIFY=NEVER", 501),
        (b"HOLDFOR=60", 555),
    ):
        reply = await client.command(f"RCPT TO:<{OTHER_DOCTOR}> ".encode() + bad)
        assert reply[0] == code, (bad, reply)
    await client.close()
