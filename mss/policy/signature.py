"""S/MIME: what a signature's verification status means for delivery.

``SIGNATURE_VERDICTS`` is the one table of S/MIME outcomes (RFC 3463 enhanced
status, English, French): the gateway decides with it and ``mss.crypto.smime``
reports with it.

===================  ========  ============================================================
status               code      why
===================  ========  ============================================================
valid                2.7.0     security status: nothing to report
none                 5.7.1     not authorised: a signature is required and there is none
encrypted            5.7.1     the signature cannot be checked (enveloped/authEnveloped-data)
compressed           5.7.1     the signature cannot be checked (compressed-data)
tampered             5.7.7     message integrity failure
malformed            5.7.7     integrity failure: the signature cannot be read
unsupported          5.7.6     cryptographic algorithm not supported (digest or signature)
unknown_ca           5.7.5     cryptographic failure: the signer's certificate is not trusted
expired              5.7.5     cryptographic failure: certificate outside its validity
revoked              5.7.5     cryptographic failure: certificate revoked
bad_eku              5.7.5     cryptographic failure: certificate not for e-mail protection
address_mismatch     5.7.1     not authorised: the signer is not the sender (From)
===================  ========  ============================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from mss.policy.decision import OK, Decision, refuse
from mss.policy.facts import MailboxFacts

# status -> (enhanced status, English, French)
SIGNATURE_VERDICTS: dict[str, tuple[str, str, str]] = {
    "valid": ("2.7.0", "the S/MIME signature is valid", "la signature S/MIME est valide"),
    "none": (
        "5.7.1",
        "the message carries no S/MIME signature",
        "le message ne porte pas de signature S/MIME",
    ),
    "encrypted": (
        "5.7.1",
        "the message is encrypted, so its signature cannot be checked",
        "le message est chiffré : sa signature ne peut pas être vérifiée",
    ),
    "compressed": (
        "5.7.1",
        "the message is compressed, so its signature cannot be checked",
        "le message est compressé : sa signature ne peut pas être vérifiée",
    ),
    "tampered": (
        "5.7.7",
        "the message was modified after it was signed",
        "le message a été modifié après sa signature",
    ),
    "malformed": ("5.7.7", "the signature cannot be read", "la signature est illisible"),
    "unsupported": (
        "5.7.6",
        "the signature uses an algorithm the hub does not accept",
        "la signature utilise un algorithme que le service n'accepte pas",
    ),
    "unknown_ca": (
        "5.7.5",
        "the signing certificate does not chain to a trusted authority",
        "le certificat de signature n'est pas émis par une autorité de confiance",
    ),
    "expired": (
        "5.7.5",
        "the signing certificate is expired or not yet valid",
        "le certificat de signature est expiré ou pas encore valide",
    ),
    "revoked": (
        "5.7.5",
        "the signing certificate is revoked",
        "le certificat de signature est révoqué",
    ),
    "bad_eku": (
        "5.7.5",
        "the signing certificate is not allowed to sign e-mail (emailProtection)",
        "le certificat de signature n'est pas autorisé à signer des courriels",
    ),
    "address_mismatch": (
        "5.7.1",
        "the signing certificate belongs to another address than From",
        "le certificat de signature appartient à une autre adresse que l'expéditeur",
    ),
}
# A message whose signature, if it has one, is inside a layer the hub does not open.
NOT_CHECKABLE = frozenset({"encrypted", "compressed"})


def signature_verdict(status: str) -> tuple[str, str, str]:
    """(enhanced status, English, French) of a verification status; an unknown one is an integrity
    failure."""
    return SIGNATURE_VERDICTS.get(
        status,
        ("5.7.7", f"the signature is invalid ({status})", f"la signature est invalide ({status})"),
    )


def decide_signature(
    sender: MailboxFacts | None, recipients: Sequence[MailboxFacts], status: str, reason: str = ""
) -> Decision:
    """Refuse a broken signature; require a valid one from a professional side to a patient.

    An encrypted (or compressed) message cannot be checked nor shown in the patient portal:
    refused for a patient, delivered to professionals, whose own client opens it.
    """
    if status == "valid":
        return OK
    if status == "none":
        if (sender is None or sender.is_professional_side) and any(
            r.is_patient for r in recipients
        ):
            return refuse(
                554,
                "5.7.1",
                "A message from a professional to a patient must carry a valid "
                "S/MIME signature of its sender",
                "Un message d'un professionnel à un patient "
                "doit porter une signature S/MIME valide de son expéditeur",
            )
        return OK
    if status in NOT_CHECKABLE:
        if any(r.is_patient for r in recipients):
            english, french = _FORM_WORDS[status]
            return refuse(
                554,
                signature_verdict(status)[0],
                f"A message to a patient cannot be {english}: the hub can neither check its "
                f"S/MIME signature nor show it in the patient portal; "
                f"send it signed, not {english}",
                f"Un message à un patient ne peut pas être {french} : le service ne peut ni "
                "vérifier sa signature S/MIME ni l'afficher dans l'espace patient ; envoyez-le "
                f"signé, non {french}",
            )
        return OK
    enhanced, english, french = signature_verdict(status)
    detail = f": {reason}" if reason and reason not in english else ""
    return refuse(
        554,
        enhanced,
        f"S/MIME signature refused: {english}{detail}",
        f"Signature S/MIME refusée : {french}",
    )


_FORM_WORDS = {"encrypted": ("encrypted", "chiffré"), "compressed": ("compressed", "compressé")}
