"""The sender's query of its messages' delivery statuses, on the professional API.

``GET /mss/delivery-status?message-id=<Message-ID>``: for the caller's personal mailbox
(``dmp_bridge.api_auth``: certificate or mailbox credentials), the latest status of that
message for each recipient (``mss.delivery_status``), as JSON: ``state`` (``relayed``,
``delivered``, ``dispatched``, ``filed``, ``displayed``, ``failed``), ``code`` (an
enhanced status, or the IG's 90x), the reason in English and French, and when. A
message the caller did not send answers 404, exactly as an unknown one. Reading the
status of a message to a patient (displayed, filed) is audited on that patient's
history (``delivery_status_read``).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.api_auth import Caller
from dmp_bridge.api_common import FhirInputError, in_transaction, outcomes
from mss.audit import record
from mss.delivery_status import MAX_ID, statuses_of
from mss.directory.store import find_mailbox, personal_mailbox
from mss.web import SETTINGS

PATH = "/mss/delivery-status"


async def delivery_status(request: web.Request) -> web.StreamResponse:
    """The statuses of one message the caller sent, per recipient."""
    unknown = set(request.query) - {"message-id"}
    if unknown:
        raise FhirInputError(
            400, "not-supported", f"unknown parameter(s) {', '.join(sorted(unknown))}"
        )
    message_id = request.query.get("message-id", "").strip()
    if not message_id.startswith("<") or not message_id.endswith(">") or len(message_id) > MAX_ID:
        raise FhirInputError(
            400, "required", "message-id is required: the Message-ID, <...> (RFC 5322 §3.6.4)"
        )

    async def work(session: AsyncSession, caller: Caller) -> web.StreamResponse:
        mailbox = await personal_mailbox(session, caller.professional.id)
        found = (
            (await statuses_of(session, mailbox.address, [message_id])).get(message_id, [])
            if mailbox is not None
            else []
        )
        if mailbox is None or not found:
            raise FhirInputError(404, "not-found", f"no message {message_id} sent by you")
        for status in found:
            recipient = await find_mailbox(session, status.recipient)
            if recipient is not None and recipient.patient_id is not None:
                record(
                    session,
                    "delivery_status_read",
                    actor_kind="professional",
                    actor=caller.professional.id_nat or mailbox.address,
                    patient_id=recipient.patient_id,
                    target=mailbox.address,
                    source="api",
                    message_id=message_id,
                    state=status.state,
                )
        body = {
            "message_id": message_id,
            "sender": mailbox.address,
            "reporting_host": request.app[SETTINGS].hostname,
            "recipients": [
                {
                    "recipient": s.recipient,
                    "state": s.state,
                    "code": s.code,
                    "reason": s.detail,
                    "reason_fr": s.detail_fr,
                    "sentence_fr": s.sentence_fr,
                    "updated_at": s.updated_at.isoformat(),
                }
                for s in found
            ],
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return await in_transaction(request, work)


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, outcomes(delivery_status))
