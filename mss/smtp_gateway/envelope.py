"""Who is sending, as the envelope stage established it."""

from __future__ import annotations

from dataclasses import dataclass, field

from mss.mailbox.structure import leaves
from mss.message import Message
from mss.policy import MailboxFacts, PeerCertificateFacts, RecipientFacts
from mss.policy.patient_documents import PatientDocumentFacts

SIGNATURE_PARTS = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})


@dataclass
class Sender:
    """The sender of one transaction: a local mailbox (submission, portal) or another operator."""

    mail_from: str
    mailbox: MailboxFacts | None = None
    operator: PeerCertificateFacts | None = None
    channel: str = "submission"  # submission, relay, portal
    # A one-off document the portal built for a patient (``mss.policy.patient_documents``):
    # set only by ``Gateway.submit``, never from SMTP.
    one_off: str = ""

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
    # The one-off document as DATA read it (the sender named one): what delivery decides on.
    document: PatientDocumentFacts | None = None

    @property
    def local_mailboxes(self) -> list[MailboxFacts]:
        return [r.mailbox for r in self.recipients if r.local and r.mailbox is not None]


def one_off_document(parsed: Message, sender: Sender) -> PatientDocumentFacts:
    """What a one-off document message carries: its PDFs and any other part beyond one text.

    The detached S/MIME signature the hub adds (``mss.crypto.space_signing``) is no attachment:
    the signature stage verifies it."""
    parts = [
        kind
        for leaf in leaves(parsed.structure.parts)
        if (kind := leaf.get("type", "")) not in SIGNATURE_PARTS
    ]
    pdfs = parts.count("application/pdf")
    texts = parts.count("text/plain")
    return PatientDocumentFacts(
        kind=sender.one_off,
        built_by_portal=sender.channel == "portal",
        pdf_attachments=pdfs,
        other_attachments=len(parts) - pdfs - min(texts, 1),
    )
