"""Who signed a message, in the words the message page shows, from the stored S/MIME result."""

from __future__ import annotations

from dataclasses import dataclass

from mss.mailbox.models import StoredMessage
from portal.messages import Counterpart, Directory, titled_name

# Why a signature is not verified, for the patient (the gateway refuses these before delivery
# to a patient; a message stored before a rule changed may still carry one).
NOT_VERIFIED = {
    "none": "Ce message n'est pas signé : l'identité de son expéditeur n'a pas pu être vérifiée.",
    "tampered": "La signature ne correspond plus au message : il a été modifié après avoir "
    "été signé.",
    "unknown_ca": "La signature vient d'un certificat qui n'a pas été émis par une autorité "
    "de confiance.",
    "expired": "La signature vient d'un certificat expiré ou pas encore valide.",
    "revoked": "La signature vient d'un certificat révoqué.",
    "bad_eku": "La signature vient d'un certificat qui n'est pas destiné à signer des messages.",
    "address_mismatch": "La signature vient du certificat d'une autre adresse que celle de "
    "l'expéditeur.",
    "malformed": "La signature de ce message est illisible.",
}


ENCRYPTED = (
    "Message chiffré : il a voyagé chiffré jusqu'au service de messagerie, "
    "personne d'autre ne pouvait le lire en chemin."
)


@dataclass(frozen=True)
class SignatureLine:
    """``verified`` and the sentence shown: who signed, or why the signature is not verified;
    ``encrypted``: the sentence saying it arrived encrypted (S/MIME enveloped-data), or ""."""

    verified: bool
    sentence: str
    encrypted: str = ""


def _common_name(subject: str | None) -> str:
    for part in (subject or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().upper() in ("CN", "COMMONNAME") and value.strip():
            return value.strip()
    return ""


async def signature_line(
    directory: Directory, message: StoredMessage, sender: Counterpart
) -> SignatureLine:
    """``Signé par Dr X, RPPS ..., signature vérifiée.``, or why the signature is not verified."""
    status = message.signature_status or "none"
    encrypted = ENCRYPTED if message.arrived_encrypted else ""
    if status != "valid":
        return SignatureLine(
            False,
            NOT_VERIFIED.get(status, f"La signature n'a pas pu être vérifiée ({status})."),
            encrypted,
        )
    who, number = "", ""
    if message.signer_id_nat:
        professional = await directory.professional(message.signer_id_nat)
        if professional is not None:
            who = titled_name(professional)
        number = Counterpart("", "", id_nat=message.signer_id_nat).rpps
    if not who:
        who = _common_name(message.signer_subject)
        if not who or who == message.signer_id_nat:  # IGC-Santé puts the idNat in the CN
            who = sender.name
    address = message.signer_address or sender.address
    details = ", ".join(part for part in (who, number) if part)
    return SignatureLine(True, f"Signé par {details} ({address}), signature vérifiée.", encrypted)
