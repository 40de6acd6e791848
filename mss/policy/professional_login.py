"""May this OpenID Connect identity act as a professional of the hub? (Pro Santé Connect style)

The relying party (``mss.oidc``) checks the token itself (signature, issuer,
audience, dates, nonce) and names what failed with one of the ``TOKEN_*``
reasons; ``token_refused`` gives that refusal its sentences. Once the token is
sound, ``decide_oidc_professional`` judges who it names: the authentication
level (``acr``) must be one the operator accepts, the idNat claim must be
there, the directory must know the professional, and one of their personal
(PER) mailboxes on this hub must be active. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.policy.decision import Decision, allow, refuse_http
from mss.policy.vocabulary import MailboxState

TOKEN_WRONG_ISSUER = "oidc_wrong_issuer"
TOKEN_WRONG_AUDIENCE = "oidc_wrong_audience"
TOKEN_EXPIRED = "oidc_expired"
TOKEN_NOT_YET_VALID = "oidc_not_yet_valid"
TOKEN_BAD_SIGNATURE = "oidc_bad_signature"
TOKEN_UNKNOWN_KEY = "oidc_unknown_key"
TOKEN_MALFORMED = "oidc_malformed"
TOKEN_NONCE = "oidc_nonce_mismatch"
TOKEN_INACTIVE = "oidc_token_inactive"
STATE_MISMATCH = "oidc_state_mismatch"
PROVIDER_ERROR = "oidc_provider_error"
PROVIDER_UNAVAILABLE = "oidc_provider_unavailable"
NOT_CONFIGURED = "oidc_not_configured"
ACR_INSUFFICIENT = "oidc_acr_insufficient"
NO_ID_NAT = "oidc_no_id_nat"
UNKNOWN_PROFESSIONAL = "oidc_unknown_professional"
NO_MAILBOX = "oidc_no_mailbox"
MAILBOX_CLOSED = "oidc_mailbox_closed"

_TOKEN_SENTENCES: dict[str, tuple[int, str, str]] = {
    TOKEN_WRONG_ISSUER: (
        401,
        "the token was issued by {detail}, not by the configured provider",
        "Cette connexion vient d'un autre fournisseur d'identité ({detail}) que celui du service.",
    ),
    TOKEN_WRONG_AUDIENCE: (
        401,
        "the token was issued for another client ({detail})",
        "Cette connexion a été délivrée pour un autre service ({detail}).",
    ),
    TOKEN_EXPIRED: (
        401,
        "the token expired at {detail}; log in again",
        "Votre connexion a expiré ({detail}). Reconnectez-vous.",
    ),
    TOKEN_NOT_YET_VALID: (
        401,
        "the token is not valid before {detail}",
        "Cette connexion n'est pas encore valable (pas avant {detail}).",
    ),
    TOKEN_BAD_SIGNATURE: (
        401,
        "the token's signature does not verify with the provider's keys",
        "La signature de la connexion ne correspond pas aux clés du fournisseur d'identité.",
    ),
    TOKEN_UNKNOWN_KEY: (
        401,
        "the token is signed with a key the provider does not publish ({detail})",
        "La connexion est signée d'une clé inconnue du fournisseur d'identité ({detail}).",
    ),
    TOKEN_MALFORMED: (
        401,
        "the token is not a valid signed JWT: {detail}",
        "La connexion reçue est illisible ({detail}).",
    ),
    TOKEN_NONCE: (
        401,
        "the ID token's nonce is not the one this login sent: it belongs to another login",
        "Cette réponse du fournisseur d'identité appartient à une autre connexion. "
        "Recommencez la connexion.",
    ),
    TOKEN_INACTIVE: (
        401,
        "the provider says the access token is not active (expired or revoked)",
        "Le fournisseur d'identité indique que cette connexion n'est plus valable.",
    ),
    STATE_MISMATCH: (
        400,
        "the login's state does not match this browser's login (started elsewhere, or expired)",
        "Cette réponse ne correspond à aucune connexion commencée dans ce navigateur, "
        "ou la connexion a pris plus de 10 minutes. Recommencez la connexion.",
    ),
    PROVIDER_ERROR: (
        401,
        "the identity provider refused the login: {detail}",
        "Le fournisseur d'identité a refusé la connexion ({detail}).",
    ),
    PROVIDER_UNAVAILABLE: (
        503,
        "the identity provider cannot be reached: {detail}",
        "Le fournisseur d'identité ne répond pas pour le moment. Réessayez dans quelques minutes.",
    ),
    NOT_CONFIGURED: (
        404,
        "OpenID Connect login is not configured on this hub ([oidc] issuer)",
        "La connexion des professionnels par Pro Santé Connect n'est pas ouverte sur ce service.",
    ),
}


def token_refused(reason: str, detail: str = "") -> Decision:
    """The refusal of a token (or a login's answer) that failed the relying party's checks."""
    status, english, french = _TOKEN_SENTENCES[reason]
    return refuse_http(status, reason, english.format(detail=detail), french.format(detail=detail))


@dataclass(frozen=True)
class OidcIdentity:
    """What a verified token says: who issued it, about whom, at which level."""

    issuer: str
    subject: str
    id_nat: str | None
    acr: str | None


@dataclass(frozen=True)
class ProfessionalAccount:
    """The directory's professional named by the idNat, and the states of their PER mailboxes."""

    id_nat: str
    name: str
    mailboxes: tuple[tuple[str, MailboxState], ...]  # (address, state)


def decide_oidc_professional(
    identity: OidcIdentity,
    accepted_acr: tuple[str, ...],
    account: ProfessionalAccount | None,
) -> Decision:
    """May this verified identity act as the directory's professional it names?"""
    if accepted_acr and identity.acr not in accepted_acr:
        shown = identity.acr or "none"
        wanted = ", ".join(accepted_acr)
        return refuse_http(
            403,
            ACR_INSUFFICIENT,
            f"the login's authentication level (acr {shown}) is not one this hub accepts "
            f"({wanted}): log in with your e-CPS or CPS card",
            f"Le niveau de connexion ({shown}) ne suffit pas : connectez-vous avec votre "
            f"carte CPS ou l'application e-CPS (niveau attendu : {wanted}).",
        )
    if not identity.id_nat:
        return refuse_http(
            403,
            NO_ID_NAT,
            "the token names no idNat: the DMP is open to health professionals",
            "Cette connexion ne donne pas votre identifiant national (RPPS ou ADELI) : "
            "le service est réservé aux professionnels de santé.",
        )
    if account is None:
        return refuse_http(
            403,
            UNKNOWN_PROFESSIONAL,
            f"idNat {identity.id_nat} is not a professional of this hub's directory",
            f"L'identifiant national {identity.id_nat} ne correspond à aucun professionnel "
            "de l'annuaire de ce service.",
        )
    if not account.mailboxes:
        return refuse_http(
            403,
            NO_MAILBOX,
            f"idNat {account.id_nat} has no personal (PER) mailbox on this hub",
            f"{account.name} n'a pas de boîte aux lettres personnelle sur ce service.",
        )
    if all(state is not MailboxState.ACTIVE for _, state in account.mailboxes):
        address, state = account.mailboxes[0]
        return refuse_http(
            403,
            MAILBOX_CLOSED,
            f"the mailbox {address} of idNat {account.id_nat} is {state.value}",
            f"La boîte {address} de {account.name} est fermée ({state.value}) : "
            "la connexion n'est pas possible.",
        )
    return allow(
        f"idNat {account.id_nat} logged in by OpenID Connect",
        f"{account.name} est connecté(e)",
    )
