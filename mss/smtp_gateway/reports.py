"""Reports that come back to a hub mailbox (MDNs, DSNs): the sender's delivery status moves.

A follow-up of delivery (``mss.followups``): a ``multipart/report`` stored in a hub mailbox
enqueues ``smtp.report``, whose job reads the report's machine part from the stored bytes
(one reading, ``mss.message``) and records the status it states (``mss.delivery_status``):

- ``message/disposition-notification`` (RFC 8098): ``displayed``, ``dispatched``,
  ``processed`` (the IG's filing success: ``filed``), ``processed/Error: 90x...`` and
  ``deleted`` (``failed``, the 90x code kept), for its ``Final-Recipient`` and
  ``Original-Message-ID``;
- ``message/delivery-status`` (RFC 3464): ``failed`` per recipient block whose
  ``Action`` is ``failed``, ``delivered`` / ``relayed`` for those actions, for the
  message the DSN's ``In-Reply-To`` names (the ENVID is not a Message-ID).

The status changes only for the mailbox the report was delivered to, as the sender of
the original (``statuses_of`` reads by sender), and only as ``decide_report`` allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mss.db import Database
from mss.delivery_status import record_status
from mss.directory.facts import mailbox_facts_by_id
from mss.followups import FollowUp, FollowUps
from mss.jobs import JobContext, PermanentFailure
from mss.mailbox.headers import split_headers
from mss.mailbox.models import StoredMessage
from mss.mailbox.structure import decoded_body
from mss.message import Message, UnreadableMessage, parse_message
from mss.policy.delivery_status import decide_report, report_state

REPORT_JOB = "smtp.report"
MDN_TYPES = frozenset(
    {"message/disposition-notification", "message/global-disposition-notification"}
)
DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_CODE = re.compile(r"\b(9\d\d)\^")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")

Report = tuple[str, str, str, str]  # (final recipient, state, code, original Message-ID)


def _report_parts(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The machine-readable report parts of a tree, a signature's content included (an MDN
    to a patient is signed) but not a message attached to it (a report forwarded)."""
    if node.get("type") in MDN_TYPES or node.get("type") in DSN_TYPES:
        yield node
    for child in node.get("parts", ()):
        yield from _report_parts(child)


def is_report(message: Message) -> bool:
    """A report the hub reads: a ``multipart/report`` whose part the tree shows (signed or not)."""
    return any(True for _ in _report_parts(message.structure.parts))


def _address(value: str) -> str:
    """``rfc822; a@b`` → ``a@b``."""
    _, _, address = value.rpartition(";")
    return address.strip().strip("<>").lower()


def _field(fields: list[tuple[str, str]], name: str) -> str:
    return next((v.strip() for n, v in fields if n.lower() == name), "")


def reports_of(message: Message) -> Iterator[Report]:
    """Every status a report's machine-readable part states."""
    for leaf in _report_parts(message.structure.parts):
        kind = leaf.get("type", "")
        try:
            body = decoded_body(message.raw, leaf)
        except ValueError:
            continue
        blocks = [b for b in re.split(rb"\r?\n\r?\n", body) if b.strip()]
        if kind in MDN_TYPES:
            fields = [f for b in blocks for f in split_headers(b + b"\r\n")]
            disposition = _field(fields, "disposition")
            state = report_state(disposition)
            original = _field(fields, "original-message-id")
            recipient = _address(_field(fields, "final-recipient"))
            if state and original and recipient:
                found = _CODE.search(disposition)
                yield recipient, state, found[1] if found else "", original
            continue
        for block in blocks[1:]:  # the first block is per message (RFC 3464 §2.2)
            fields = split_headers(block + b"\r\n")
            action = _field(fields, "action").lower()
            recipient = _address(_field(fields, "final-recipient"))
            if action in ("failed", "delivered", "relayed") and recipient:
                status = _STATUS.search(_field(fields, "status"))
                yield recipient, action, status[1] if status else "", ""


def _original_id(message: Message) -> str:
    """The Message-ID a DSN answers: its ``In-Reply-To`` (the hub's DSNs and most MTAs')."""
    return next(iter(message.header_values("In-Reply-To")), "").strip()


async def run_report_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Record the statuses of one report delivered to one hub mailbox."""
    db: Database = ctx.db
    async with db.read() as session:
        stored = await session.get(StoredMessage, payload["message_id"])
        if stored is None:
            raise PermanentFailure(f"stored message {payload['message_id']} is gone")
        raw = bytes(stored.raw)
        mailbox = await mailbox_facts_by_id(session, payload["mailbox_id"])
    if mailbox is None:
        return
    try:
        message = parse_message(raw)
    except UnreadableMessage as exc:
        raise PermanentFailure(f"stored message {payload['message_id']}: {exc}") from None
    reports = list(reports_of(message))
    async with db.write() as session:
        for recipient, state, code, original in reports:
            original = original or _original_id(message)
            allowed = decide_report(message.from_address, recipient, payload.get("mail_from", ""))
            if not original or not allowed.allowed:
                continue
            await record_status(
                session,
                message_id=original,
                sender=mailbox.address,
                recipient=recipient,
                state=state,
                code=code,
                only_known=True,
            )


def _payload(delivery: Any) -> list[dict[str, Any]]:
    return [
        {
            "message_id": delivery.stored_message_id,
            "mailbox_id": delivery.recipient.id,
            "mail_from": delivery.mail_from,
        }
    ]


def register_follow_ups(registry: FollowUps) -> None:
    """A report delivered to a hub mailbox moves the status of the message it reports on."""
    registry.register(FollowUp(REPORT_JOB, is_report, payloads=_payload))
