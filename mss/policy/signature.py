"""S/MIME: what a signature's verification status means for delivery."""

from __future__ import annotations

from collections.abc import Sequence

from mss.policy.decision import OK, Decision, refuse
from mss.policy.facts import MailboxFacts

# status -> (enhanced status, English, French) for a signature that is present but wrong
_FAILURES: dict[str, tuple[str, str, str]] = {
    "tampered": ("5.7.7", "the message was modified after it was signed",
                 "le message a été modifié après sa signature"),
    "malformed": ("5.7.7", "the signature cannot be read", "la signature est illisible"),
    "unknown_ca": ("5.7.5", "the signing certificate does not chain to a trusted authority",
                   "le certificat de signature n'est pas émis par une autorité de confiance"),
    "expired": ("5.7.5", "the signing certificate is expired or not yet valid",
                "le certificat de signature est expiré ou pas encore valide"),
    "revoked": ("5.7.5", "the signing certificate is revoked", "le certificat de signature est révoqué"),
    "bad_eku": ("5.7.5", "the signing certificate is not allowed to sign e-mail (emailProtection)",
                "le certificat de signature n'est pas autorisé à signer des courriels"),
    "address_mismatch": ("5.7.1", "the signing certificate belongs to another address than From",
                         "le certificat de signature appartient à une autre adresse que l'expéditeur"),
}


def decide_signature(sender: MailboxFacts | None, recipients: Sequence[MailboxFacts], status: str,
                     reason: str = "") -> Decision:
    """Refuse a broken signature; require a valid one from a professional side to a patient."""
    if status == "valid":
        return OK
    if status == "none":
        if (sender is None or sender.is_professional_side) and any(r.is_patient for r in recipients):
            return refuse(554, "5.7.1", "A message from a professional to a patient must carry a valid "
                          "S/MIME signature of its sender", "Un message d'un professionnel à un patient "
                          "doit porter une signature S/MIME valide de son expéditeur")
        return OK
    enhanced, english, french = _FAILURES.get(status, ("5.7.7", f"the signature is invalid ({status})",
                                                       f"la signature est invalide ({status})"))
    detail = f": {reason}" if reason and reason not in english else ""
    return refuse(554, enhanced, f"S/MIME signature refused: {english}{detail}",
                  f"Signature S/MIME refusée : {french}")
