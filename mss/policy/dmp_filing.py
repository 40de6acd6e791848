"""Filing a document received in an XDM package, and answering its sender with an MDN.

The codes are the MSSanté integration errors (HL7v2 applicationErrorCondition):
900 wrong version on replace/delete, 901 author not allowed, 902 unknown
patient (no record open), 903 INS missing, 904 INS mismatch, 905 incomplete
INS, 906 other. Pure functions: the filing job loads the facts.
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.policy.consent import ConsentFacts
from mss.policy.decision import Decision, allow, refuse
from mss.policy.facts import normalize_address

# Integration error -> (SMTP code, enhanced status, HTTP status): how other ways out read it.
_CODES: dict[int, tuple[int, str, int]] = {
    900: (550, "5.6.0", 409),  # wrong version on replace/delete
    901: (550, "5.7.1", 403),  # author not allowed
    902: (550, "5.1.1", 404),  # unknown patient (no record open)
    903: (554, "5.6.0", 422),  # INS missing
    904: (554, "5.6.0", 422),  # INS mismatch
    905: (554, "5.6.0", 422),  # incomplete INS
    906: (554, "5.6.0", 422),  # other
}
FILE = allow("Filed", "Intégré")


def refuse_filing(code: int, sentence: str, sentence_fr: str) -> Decision:
    """A document refused with its MSSanté integration error code (900-906)."""
    smtp_code, enhanced_status, status = _CODES.get(code, _CODES[906])
    return refuse(
        smtp_code,
        enhanced_status,
        sentence,
        sentence_fr,
        reason=f"integration_{code}",
        status=status,
        code=code,
    )


@dataclass(frozen=True)
class TargetFacts:
    """The document an action C (replace) or D (delete) names, as the record holds it."""

    status: str  # current, replaced, deleted
    author_id_nat: str | None
    author_institution: str | None


@dataclass(frozen=True)
class FilingFacts:
    """One document entry of a package addressed to one patient."""

    record_open: bool
    recipient_ins: str
    entry_ins: str | None
    author_id_nat: str | None
    author_institution: str | None
    consent: ConsentFacts
    sender_id_nat: str | None = None  # the idNat of the message's S/MIME signer
    action: str | None = None  # None: a new document; "C" replace; "D" delete
    target_unique_id: str | None = None
    target: TargetFacts | None = None
    refusals: tuple[tuple[int, str, str], ...] = ()  # (code, sentence, sentence_fr) from parsing


def decide_filing(facts: FilingFacts) -> Decision:
    """Whether one document entry may be filed (or replace/delete the one it names)."""
    if not facts.record_open:
        return refuse_filing(
            902,
            "The recipient has no medical record open on this hub (account not "
            "active or record opposed)",
            "Le destinataire n'a pas de dossier médical "
            "ouvert sur ce service (compte inactif ou opposition au dossier)",
        )
    if facts.refusals:
        code, sentence, sentence_fr = facts.refusals[0]
        return refuse_filing(code, sentence, sentence_fr)
    if facts.entry_ins is None:
        return refuse_filing(903, "The document carries no INS", "Le document ne porte pas d'INS")
    if facts.entry_ins.strip().upper() != facts.recipient_ins.strip().upper():
        return refuse_filing(
            904,
            f"The document is for INS {facts.entry_ins}, not for the recipient of the message",
            f"Le document concerne l'INS {facts.entry_ins}, pas le destinataire du message",
        )
    author = facts.author_id_nat
    if author is not None and author in facts.consent.blocked:
        return refuse_filing(
            901, "The patient has blocked this author", "Le patient a bloqué cet auteur"
        )
    if facts.sender_id_nat is not None and facts.sender_id_nat in facts.consent.blocked:
        return refuse_filing(
            901,
            "The patient has blocked the sender of this document",
            "Le patient a bloqué l'expéditeur de ce document",
        )
    if facts.action in ("C", "D"):
        return _decide_change(facts)
    return FILE


def _decide_change(facts: FilingFacts) -> Decision:
    verb, verb_fr = ("replace", "remplacer") if facts.action == "C" else ("delete", "supprimer")
    target = facts.target
    named = facts.target_unique_id or "?"
    if target is None or target.status == "deleted":
        return refuse_filing(
            900,
            f"No current document {named} in the patient's record to {verb}",
            f"Aucun document courant {named} à {verb_fr} dans le dossier du patient",
        )
    if target.status != "current":
        return refuse_filing(
            900,
            f"Document {named} is not the latest version: it was already replaced",
            f"Le document {named} n'est pas la dernière version : il a déjà été remplacé",
        )
    same_author = facts.author_id_nat is not None and facts.author_id_nat == target.author_id_nat
    same_institution = (
        facts.author_institution is not None
        and facts.author_institution == target.author_institution
    )
    if not (same_author or same_institution):
        return refuse_filing(
            901,
            f"Only the author of document {named}, or a professional of the same "
            f"institution, can {verb} it",
            f"Seul l'auteur du document {named}, ou un "
            f"professionnel de la même structure, peut le {verb_fr}",
        )
    return FILE


@dataclass(frozen=True)
class MdnFacts:
    """What RFC 8098 needs to decide whether to send an MDN automatically."""

    disposition_notification_to: tuple[str, ...]
    return_path: str  # the envelope MAIL FROM
    auto_submitted: str = ""  # the Auto-Submitted header of the original
    content_type: str = ""


def decide_mdn(facts: MdnFacts) -> str | None:
    """The address to send the MDN to, or None (not asked, loop risk, or a report itself).

    RFC 8098 §2.1: an automatic MDN goes only to a Disposition-Notification-To
    equal to the Return-Path; never answer a report or an auto-generated message.
    """
    if not facts.disposition_notification_to or not facts.return_path:
        return None
    if facts.content_type.lower() == "multipart/report":
        return None
    if facts.auto_submitted and facts.auto_submitted.strip().lower() != "no":
        return None
    wanted = normalize_address(facts.return_path)
    for address in facts.disposition_notification_to:
        if normalize_address(address) == wanted:
            return wanted
    return None


@dataclass(frozen=True)
class FilingAnswer:
    """How the sender hears of the filing: an MDN, or the IG's standard e-mail on an error."""

    kind: str  # "mdn" or "error_email"
    to: str


def decide_filing_answer(facts: MdnFacts, error: int | None) -> FilingAnswer | None:
    """An MDN when one was asked for (``decide_mdn``); otherwise, on an error, a standard e-mail.

    The ANS IG (struct-email-standard): with no Disposition-Notification-To, an
    error is still told, by an ordinary message to the sender (the envelope's
    Return-Path). Never to a null sender, a report or an automatic message (RFC 3834).
    """
    to = decide_mdn(facts)
    if to is not None:
        return FilingAnswer("mdn", to)
    if error is None or not facts.return_path:
        return None
    if facts.content_type.lower() == "multipart/report":
        return None
    if facts.auto_submitted and facts.auto_submitted.strip().lower() != "no":
        return None
    return FilingAnswer("error_email", normalize_address(facts.return_path))
