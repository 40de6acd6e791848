"""Whether opening a message in the portal sends a read receipt (an RFC 8098 "displayed" MDN)."""

from __future__ import annotations

from mss.policy.dmp_filing import MdnFacts, decide_mdn


def decide_read_receipt(facts: MdnFacts, *, received: bool, already_answered: bool) -> str | None:
    """The address to send a "displayed" MDN to when a patient opens a message, or None.

    Only for a message the patient received, once (RFC 3503 ``$MDNSent``: sent
    or declined before), and under the RFC 8098 rules of ``decide_mdn``:
    asked by Disposition-Notification-To, to the sender's own address, never
    for a report or an automatic message.
    """
    if not received or already_answered:
        return None
    return decide_mdn(facts)
