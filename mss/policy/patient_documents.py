"""A document the patient sends by their own choice to a professional: the profile summary.

Why the professional-initiates rule (``mss.policy.conversation``) does not forbid it: that rule
keeps professionals from receiving unsolicited free-text requests they would then have to
answer, by letting only them open a conversation. A profile summary is not a conversation: the
hub writes the whole message (a fixed sentence and the PDF ``mss.profile.pdf`` makes, nothing
the patient types), it is one-off, and it opens nothing: the professional's reply, if they
choose to write one, opens a conversation as any professional's message to a patient does.
So the send is allowed only when all of that holds: the portal built it (never SMTP, where a
sender could write anything), to one professional's personal (PER) mailbox the patient chose
from the directory, carrying exactly one PDF and no other attachment. A free-text message that
opens a conversation is still refused. The portal has the hub sign the summary for the patient's
mailbox (``mss.crypto.space_signing``); its detached signature part is not an attachment.
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.policy.decision import Decision, allow, refuse
from mss.policy.facts import MailboxFacts
from mss.policy.vocabulary import MailboxKind

PROFILE_SUMMARY = "profile-summary"
ONE_OFF_KINDS = frozenset({PROFILE_SUMMARY})


@dataclass(frozen=True)
class PatientDocumentFacts:
    """A one-off document message as the gateway read it."""

    kind: str  # what the portal says it built: profile-summary
    built_by_portal: bool  # the portal channel (the hub wrote the message)
    pdf_attachments: int = 0
    other_attachments: int = 0


def decide_one_off_recipient(recipient: MailboxFacts, kind: str) -> Decision:
    """RCPT time: a one-off document goes to one professional's personal mailbox."""
    if kind not in ONE_OFF_KINDS:
        return refuse(
            550,
            "5.7.1",
            f"{kind!r} is not a document a patient may send on their own initiative",
            f"« {kind} » n'est pas un document qu'un patient peut envoyer de lui-même",
            reason="unknown_document",
        )
    if recipient.kind is not MailboxKind.PER:
        return refuse(
            550,
            "5.7.1",
            "A profile summary goes to a professional's personal mailbox, "
            f"not <{recipient.address}>",
            f"Un résumé de profil s'envoie à la boîte personnelle d'un professionnel, "
            f"pas à <{recipient.address}>",
            reason="not_a_professional",
        )
    return allow("Allowed", "Autorisé")


def decide_patient_document(recipient: MailboxFacts, document: PatientDocumentFacts) -> Decision:
    """DATA time: the message is what the portal builds for this kind, and nothing more."""
    if not document.built_by_portal:
        return refuse(
            550,
            "5.7.1",
            "A patient's one-off document is sent from the portal only",
            "Un patient n'envoie un document de lui-même que depuis son espace",
            reason="not_from_portal",
        )
    where = decide_one_off_recipient(recipient, document.kind)
    if not where.allowed:
        return where
    if document.pdf_attachments != 1 or document.other_attachments:
        return refuse(
            550,
            "5.6.0",
            "A profile summary carries exactly one PDF and no other attachment",
            "Un résumé de profil contient exactement un PDF et aucune autre pièce jointe",
            reason="not_a_summary",
        )
    return allow("Allowed", "Autorisé")
