"""Who may open an SMTP session: submission logins and operators on the relay port."""

from __future__ import annotations

from dataclasses import dataclass

from mss.policy.decision import OK, Decision, refuse
from mss.policy.facts import MailboxFacts
from mss.policy.vocabulary import MailboxKind, MailboxState


@dataclass(frozen=True)
class PeerCertificateFacts:
    """A TLS client certificate already verified by the TLS layer against the trust anchors."""

    subject_dn: str
    sha256: str
    domains: tuple[str, ...] = ()
    chain_status: str = "valid"  # the TrustStore's verdict: valid, revoked, expired, bad_eku...
    chain_reason: str = ""


AUTH_FAILED = refuse(
    535, "5.7.8", "Authentication credentials invalid", "Identifiants d'authentification invalides"
)


def decide_password_login(mailbox: MailboxFacts | None, password_ok: bool) -> Decision:
    """AUTH PLAIN/LOGIN: a known, active, non-patient mailbox with the right password."""
    if mailbox is None or not password_ok:
        return AUTH_FAILED
    return _decide_login(mailbox)


def decide_certificate_login(
    mailbox: MailboxFacts | None, certificate: PeerCertificateFacts | None = None
) -> Decision:
    """The client certificate's fingerprint is registered for an APP mailbox, and still valid."""
    if certificate is not None and certificate.chain_status != "valid":
        return refuse(
            535,
            "5.7.8",
            f"The client certificate is not acceptable: "
            f"{certificate.chain_reason or certificate.chain_status}",
            f"Le certificat client n'est pas acceptable ({certificate.chain_status})",
        )
    if mailbox is None:
        return refuse(
            535,
            "5.7.8",
            "No mailbox is registered for this client certificate",
            "Aucune boîte n'est associée à ce certificat client",
        )
    if mailbox.kind is not MailboxKind.APP:
        return refuse(
            535,
            "5.7.8",
            "Only applicative mailboxes may log in with a client certificate",
            "Seules les boîtes applicatives peuvent s'authentifier par certificat",
        )
    return _decide_login(mailbox)


def _decide_login(mailbox: MailboxFacts) -> Decision:
    if mailbox.kind is MailboxKind.PAT:
        return refuse(
            535,
            "5.7.8",
            "Patient mailboxes are reached through the patient portal only",
            "Les boîtes patient ne sont accessibles que par le portail patient",
        )
    if mailbox.state is not MailboxState.ACTIVE:
        return refuse(
            535,
            "5.7.8",
            f"Mailbox {mailbox.address} is {mailbox.state.value}",
            f"La boîte {mailbox.address} est inactive ({mailbox.state.value})",
        )
    return OK


def decide_relay_client(
    certificate: PeerCertificateFacts | None, *, dn_trusted: bool, domain_trusted: bool
) -> Decision:
    """The relay port serves operators whose certificate's DN or domain is on the trust list."""
    if certificate is None:
        return refuse(
            530,
            "5.7.0",
            "The relay port requires TLS with a client certificate of an "
            "operator of the trust space",
            "Le port relais exige TLS avec un certificat "
            "client d'un opérateur de l'espace de confiance",
        )
    if certificate.chain_status != "valid":
        return refuse(
            550,
            "5.7.1",
            f"The operator certificate is not acceptable: "
            f"{certificate.chain_reason or certificate.chain_status}",
            f"Le certificat d'opérateur n'est pas acceptable ({certificate.chain_status})",
        )
    if dn_trusted or domain_trusted:
        return OK
    return refuse(
        550,
        "5.7.1",
        f"The operator certificate {certificate.subject_dn} is not on the MSSante trust list",
        f"Le certificat d'opérateur {certificate.subject_dn} n'est "
        "pas sur la liste blanche MSSanté",
    )
