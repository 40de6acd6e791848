"""The sender's query of a message's delivery statuses: ``GET /mss/delivery-status``.

The statuses are set through the store's own functions (``mss.delivery_status``, as the
events of delivery and the portal's read write them; those events are tested in
tests/smtp/test_delivery_status.py and tests/portal/test_sent_statuses.py). The caller
reads only the messages its own mailbox sent; another's answers as an unknown one; a
read of a status of a message to a patient is on that patient's history.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from sqlalchemy import select

from mss.audit import AuditEvent
from mss.delivery_status import insert_statuses, record_status, status_row
from tests.dmp.conftest import PASSWORD, Api
from tests.xdm_factory import INS

PATIENT = f"{INS}@patient.mss.localhost"
AUTHOR = "author@mss.localhost"
COLLEAGUE = "treating@mss.localhost"
MESSAGE_ID = "<cr-42@mss.localhost>"


async def _sent(api: Api) -> None:
    async with api.world.db.write() as session:
        await insert_statuses(
            session,
            [
                status_row(MESSAGE_ID, AUTHOR, PATIENT, "delivered"),
                status_row(MESSAGE_ID, AUTHOR, COLLEAGUE, "delivered"),
            ],
        )
        assert await record_status(
            session, message_id=MESSAGE_ID, recipient=PATIENT, state="displayed"
        )
        assert await record_status(
            session,
            message_id=MESSAGE_ID,
            recipient=COLLEAGUE,
            state="failed",
            code="5.2.1",
            detail="The mailbox is closed",
            detail_fr="La boîte est fermée",
        )


def _query(message_id: str = MESSAGE_ID) -> str:
    return f"/mss/delivery-status?message-id={quote(message_id)}"


async def test_the_sender_reads_each_recipients_status(api: Api) -> None:
    await _sent(api)
    status, body, headers = await api.call("GET", _query(), role="author")
    assert status == 200, body
    assert headers["Cache-Control"] == "no-store"
    answer = json.loads(body)
    assert answer["message_id"] == MESSAGE_ID and answer["sender"] == AUTHOR
    got = {r["recipient"]: (r["state"], r["code"], r["sentence_fr"]) for r in answer["recipients"]}
    assert got == {
        PATIENT: ("displayed", "", "Ouvert par le destinataire"),
        COLLEAGUE: ("failed", "5.2.1", "Non distribué : La boîte est fermée (code 5.2.1)"),
    }
    async with api.world.db.read() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "delivery_status_read")
            )
        ).all()
    assert [(e.patient_id, e.actor, e.target) for e in events] == [
        (api.world.patient.id, "810000000016", AUTHOR)
    ]  # the patient's recipient only: the colleague's status is no patient's data
    # the same through the mailbox's credentials (HTTP Basic)
    status, body, _ = await api.call("GET", _query(), basic=f"{AUTHOR}:{PASSWORD}")
    assert status == 200 and json.loads(body)["recipients"]


async def test_another_senders_or_an_unknown_message_is_not_found(api: Api) -> None:
    await _sent(api)
    for role, message_id in (("treating", MESSAGE_ID), ("author", "<nope@mss.localhost>")):
        status, body, _ = await api.call("GET", _query(message_id), role=role)
        outcome = json.loads(body)
        assert status == 404, body
        assert outcome["issue"][0]["diagnostics"] == f"no message {message_id} sent by you"


async def test_bad_queries_are_refused_precisely(api: Api) -> None:
    status, body, _ = await api.call("GET", "/mss/delivery-status", role="author")
    assert status == 400 and "message-id is required" in body.decode()
    status, body, _ = await api.call("GET", _query("cr-42@mss.localhost"), role="author")
    assert status == 400 and "<...>" in body.decode()
    status, body, _ = await api.call("GET", _query() + "&since=2024", role="author")
    assert status == 400 and "unknown parameter(s) since" in body.decode()
    status, _body, _ = await api.call("GET", _query())
    assert status == 401
