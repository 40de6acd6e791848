"""Who is sending, as the envelope stage established it."""

from __future__ import annotations

from dataclasses import dataclass, field

from mss.policy import MailboxFacts, PeerCertificateFacts, RecipientFacts


@dataclass
class Sender:
    """The sender of one transaction: a local mailbox (submission, portal) or another operator."""

    mail_from: str
    mailbox: MailboxFacts | None = None
    operator: PeerCertificateFacts | None = None
    channel: str = "submission"  # submission, relay, portal

    @property
    def actor_kind(self) -> str:
        if self.mailbox is None:
            return "operator"
        return "patient" if self.mailbox.is_patient else "professional"


@dataclass
class Transaction:
    """One MAIL transaction: the sender and the recipients accepted so far."""

    sender: Sender
    recipients: list[RecipientFacts] = field(default_factory=list)
    # Each local mailbox's original recipient: the RCPT's ORCPT (RFC 3461 §4.2), else the
    # RCPT TO address as given; the MDN's Original-Recipient (RFC 8098 §3.2.3).
    original_recipients: dict[int, str] = field(default_factory=dict)

    @property
    def local_mailboxes(self) -> list[MailboxFacts]:
        return [r.mailbox for r in self.recipients if r.local and r.mailbox is not None]
