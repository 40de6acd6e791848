"""What the DMP bridge asks of every delivery: file the XDM package a patient received.

Registered at start-up (``mss.serve.register_follow_ups``): a message carrying an
``IHE_XDM.zip`` attachment (or announcing one by its ``XDM/1.0/DDM+`` subject) gets,
for each patient mailbox it was delivered to, a ``dmp.file`` job in the delivery's
transaction (``mss.followups``), which ``dmp_bridge.filing`` runs.
"""

from __future__ import annotations

from typing import Any

from dmp_bridge.intake import FILE_JOB
from mss.followups import Delivery, FollowUp, FollowUps, patient_recipient
from mss.message import Message
from mss.policy.mss_headers import ddm_label

FILING_ATTEMPTS = 5


def carries_package(message: Message) -> bool:
    """Does the delivered message carry an XDM package (read from its attachment index), or
    announce one by its ``XDM/1.0/DDM+`` subject (the job then answers that none came)?"""
    return message.carries_xdm or ddm_label(message.facts.subject) is not None


def filing_payload(delivery: Delivery) -> list[dict[str, Any]]:
    """The filing job of one patient mailbox; ``original_recipient`` becomes the MDN's
    Original-Recipient."""
    return [
        {
            "message_id": delivery.stored_message_id,
            "mailbox_id": delivery.recipient.id,
            "mail_from": delivery.mail_from,
            "original_recipient": delivery.original_recipient,
        }
    ]


def register_follow_ups(follow_ups: FollowUps) -> None:
    """After a delivery: the ``dmp.file`` job for each patient mailbox that received a package."""
    follow_ups.register(
        FollowUp(
            FILE_JOB,
            wants=carries_package,
            to=patient_recipient,
            payloads=filing_payload,
            max_attempts=FILING_ATTEMPTS,
        )
    )
