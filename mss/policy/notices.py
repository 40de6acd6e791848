"""Which notification a patient gets for what arrived, never with medical content.

One notice per message delivered to a patient's inbox: "new_message", except
for a convocation, whose agenda job says what happened instead ("appointment"
when the agenda changed). A convocation that changed nothing in the agenda (a
duplicate, a refused calendar) is still a new message in the inbox. A
failed login that locks a patient's account from one address is told to the
patient ("login_locked"). A patient whose mailbox is about to be purged for
inactivity is told once ("retention_warning", see ``mss.policy.retention``).
"""

from __future__ import annotations

from mss.policy.agenda import AgendaAction
from mss.policy.decision import Decision
from mss.policy.facts import MailboxFacts


def decide_delivery_notice(recipient: MailboxFacts, *, agenda_follows: bool) -> str | None:
    """The notice kind to queue with a delivery to ``recipient``, or None.

    Only a patient mailbox is notified; when the agenda job follows the delivery, it
    sends the one notice (``decide_convocation_notice``), so the patient is not told twice.
    """
    if not recipient.is_patient or agenda_follows:
        return None
    return "new_message"


def decide_convocation_notice(action: AgendaAction | None) -> str:
    """The notice for a delivered convocation once the agenda job ran (None: its calendar was
    refused)."""
    if action in (AgendaAction.CREATE, AgendaAction.UPDATE, AgendaAction.CANCEL):
        return "appointment"
    return "new_message"


def decide_login_lock_notice(after_failure: Decision, *, patient_account: bool) -> str | None:
    """The notice when a failed login locked a patient's account from one address, or None.

    The patient learns that someone tried (no address, no medical content): they can
    still log in from their own device, and change their password if it was not them.
    """
    if not patient_account or not after_failure.lock_began:
        return None
    return "login_locked"


def decide_retention_notice(*, patient_account: bool) -> str | None:
    """The notice for a mailbox warned before its purge: patients are told; professionals read it
    in their INBOX."""
    return "retention_warning" if patient_account else None
