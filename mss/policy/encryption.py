"""S/MIME encryption (RFC 8551, CMS EnvelopedData RFC 5652 §6): may the hub take an encrypted
message it cannot open, and must it encrypt what it relays?

Inbound, the hub decrypts enveloped-data addressed to its mailboxes with their encryption
keys (``mss.crypto.decryption``), then judges the inner signature as for signed mail
(``mss.policy.signature``). A message it cannot decrypt is refused at DATA: storing it would
give a patient or a professional a message nobody can read, and the signature inside could
not be checked.

===================  ========  ============================================================
status               code      why (RFC 3463)
===================  ========  ============================================================
decrypted            2.7.0     security status: nothing to report
no_key               5.7.5     cryptographic failure: the hub holds no key for the recipient
not_for_recipient    5.7.5     cryptographic failure: encrypted to someone else's certificate
corrupted            5.7.5     cryptographic failure: the encrypted content cannot be opened
unsupported          5.7.6     cryptographic algorithm not supported
===================  ========  ============================================================

Outbound, ``[smime] encrypt_outbound`` says when relayed mail is encrypted to its
recipient's certificate: ``never``, ``when_known`` (a certificate was imported for the
address), or ``required`` (no certificate known: the recipient is bounced, 5.7.5).
"""

from __future__ import annotations

from typing import Literal

from mss.policy.decision import OK, Decision, refuse

EncryptOutbound = Literal["never", "when_known", "required"]
ENCRYPT_OUTBOUND_MODES: tuple[EncryptOutbound, ...] = ("never", "when_known", "required")

# status -> (enhanced status, English, French); "{r}" is the recipient's address
DECRYPTION_VERDICTS: dict[str, tuple[str, str, str]] = {
    "no_key": (
        "5.7.5",
        "the message is encrypted but {r} has no encryption certificate at this hub, "
        "so it cannot be decrypted; send it signed, not encrypted, or ask {r} for their "
        "encryption certificate",
        "le message est chiffré mais {r} n'a pas de certificat de chiffrement sur ce service : "
        "il ne peut pas être déchiffré ; envoyez-le signé sans le chiffrer, ou demandez à {r} "
        "son certificat de chiffrement",
    ),
    "not_for_recipient": (
        "5.7.5",
        "the message is not encrypted for {r}: none of its recipients' certificates is the "
        "encryption certificate of {r} at this hub",
        "le message n'est pas chiffré pour {r} : il n'est chiffré pour aucun certificat de "
        "chiffrement de {r} sur ce service",
    ),
    "corrupted": (
        "5.7.5",
        "the encrypted message cannot be decrypted for {r}: its content is damaged or was not "
        "encrypted with the key it names",
        "le message chiffré ne peut pas être déchiffré pour {r} : son contenu est abîmé ou n'a "
        "pas été chiffré avec la clé qu'il désigne",
    ),
    "unsupported": (
        "5.7.6",
        "the message is encrypted with an algorithm the hub does not accept",
        "le message est chiffré avec un algorithme que le service n'accepte pas",
    ),
}


def decide_decryption(status: str, recipient: str, reason: str = "") -> Decision:
    """Accept a message the hub decrypted for every local recipient; refuse one it could not."""
    if status == "decrypted":
        return OK
    enhanced, english, french = DECRYPTION_VERDICTS.get(status, DECRYPTION_VERDICTS["corrupted"])
    detail = f" ({reason})" if reason else ""
    return refuse(
        554,
        enhanced,
        "Encrypted message refused: " + english.format(r=recipient) + detail,
        "Message chiffré refusé : " + french.format(r=recipient),
        reason=f"decryption_{status}",
    )


def should_encrypt(mode: str, certificate_known: bool) -> bool:
    """Whether a relayed message is encrypted to its recipient: when a certificate is known,
    unless encryption is turned off."""
    return mode != "never" and certificate_known


def decide_outbound_encryption(mode: str, recipient: str, certificate_known: bool) -> Decision:
    """May a message leave in clear (inside TLS) for ``recipient``? Not when encryption is
    required and no certificate of the recipient is known: the sender gets a bounce."""
    if mode != "required" or certificate_known:
        return OK
    return refuse(
        550,
        "5.7.5",
        f"The hub must encrypt mail it relays and knows no encryption certificate for "
        f"{recipient}: import it with 'mss directory import-certificates'",
        f"Le service doit chiffrer les messages qu'il transmet et ne connaît aucun certificat "
        f"de chiffrement pour {recipient} : le message n'a pas été envoyé",
        reason="encryption_required",
    )


def decide_recipient_certificate(
    *, addresses: int, rsa: bool, key_encipherment: bool, chain_status: str, chain_reason: str
) -> Decision:
    """May an imported certificate be one relayed mail is encrypted to? It must name an e-mail
    address, carry an RSA key allowed to encipher keys (CMS key transport, RFC 8551 §2.4.2)
    and chain to a trusted authority, valid and not revoked."""
    if not addresses:
        return _refused_certificate(
            "it names no e-mail address (subjectAltName rfc822Name)",
            "il ne nomme aucune adresse électronique",
        )
    if not rsa:
        return _refused_certificate(
            "its key is not RSA: the hub encrypts by RSA key transport only",
            "sa clé n'est pas RSA : le service ne chiffre que pour des clés RSA",
        )
    if not key_encipherment:
        return _refused_certificate(
            "its keyUsage does not allow keyEncipherment",
            "son usage de clé n'autorise pas le chiffrement (keyEncipherment)",
        )
    if chain_status != "valid":
        return _refused_certificate(
            f"it is not trusted: {chain_reason}", "il n'est pas émis par une autorité de confiance"
        )
    return OK


def _refused_certificate(english: str, french: str) -> Decision:
    return refuse(
        550,
        "5.7.5",
        f"This certificate cannot be used to encrypt mail: {english}",
        f"Ce certificat ne peut pas servir à chiffrer des messages : {french}",
        reason="certificate_refused",
    )
