"""decide_oidc_professional and the token refusals: pure decisions, each refusal named."""

from __future__ import annotations

import pytest

from mss.policy.professional_login import (
    ACR_INSUFFICIENT,
    MAILBOX_CLOSED,
    NO_ID_NAT,
    NO_MAILBOX,
    STATE_MISMATCH,
    TOKEN_BAD_SIGNATURE,
    TOKEN_EXPIRED,
    TOKEN_WRONG_ISSUER,
    UNKNOWN_PROFESSIONAL,
    OidcIdentity,
    ProfessionalAccount,
    decide_oidc_professional,
    token_refused,
)
from mss.policy.vocabulary import MailboxState

ID_NAT = "810000000011"
ISSUER = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet"
ACTIVE = ProfessionalAccount(ID_NAT, "Dr MARTIN", (("martin@mss.localhost", MailboxState.ACTIVE),))


def identity(id_nat: str | None = ID_NAT, acr: str | None = "eidas1") -> OidcIdentity:
    return OidcIdentity(ISSUER, "f:550dc1c8:" + (id_nat or ""), id_nat, acr)


def test_a_known_professional_with_an_active_mailbox_at_eidas1_may_act() -> None:
    decision = decide_oidc_professional(identity(), ("eidas1",), ACTIVE)
    assert decision.allowed and decision.sentence_fr == "Dr MARTIN est connecté(e)"


@pytest.mark.parametrize(
    ("who", "accepted", "account", "reason", "status", "words"),
    [
        (identity(acr="eidas0"), ("eidas1",), ACTIVE, ACR_INSUFFICIENT, 403, "acr eidas0"),
        (identity(acr=None), ("eidas1",), ACTIVE, ACR_INSUFFICIENT, 403, "acr none"),
        (identity(id_nat=None), ("eidas1",), ACTIVE, NO_ID_NAT, 403, "names no idNat"),
        (identity(), ("eidas1",), None, UNKNOWN_PROFESSIONAL, 403, "not a professional"),
        (
            identity(),
            ("eidas1",),
            ProfessionalAccount(ID_NAT, "Dr MARTIN", ()),
            NO_MAILBOX,
            403,
            "no personal (PER) mailbox",
        ),
        (
            identity(),
            ("eidas1",),
            ProfessionalAccount(
                ID_NAT,
                "Dr MARTIN",
                (
                    ("martin@mss.localhost", MailboxState.CLOSED),
                    ("martin2@mss.localhost", MailboxState.SUSPENDED),
                ),
            ),
            MAILBOX_CLOSED,
            403,
            "martin@mss.localhost of idNat 810000000011 is closed",
        ),
    ],
)
def test_refusals(
    who: OidcIdentity,
    accepted: tuple[str, ...],
    account: ProfessionalAccount | None,
    reason: str,
    status: int,
    words: str,
) -> None:
    decision = decide_oidc_professional(who, accepted, account)
    assert not decision.allowed
    assert (decision.reason, decision.status) == (reason, status)
    assert words in decision.sentence and decision.sentence_fr


def test_one_active_mailbox_among_closed_ones_is_enough() -> None:
    account = ProfessionalAccount(
        ID_NAT,
        "Dr MARTIN",
        (("a@mss.localhost", MailboxState.CLOSED), ("b@mss.localhost", MailboxState.ACTIVE)),
    )
    assert decide_oidc_professional(identity(), ("eidas1",), account).allowed


def test_no_accepted_level_accepts_any() -> None:
    assert decide_oidc_professional(identity(acr=None), (), ACTIVE).allowed


@pytest.mark.parametrize(
    ("reason", "detail", "status", "english", "french"),
    [
        (TOKEN_WRONG_ISSUER, "https://evil", 401, "issued by https://evil", "autre fournisseur"),
        (TOKEN_EXPIRED, "2026-12-04 02:00:00 UTC", 401, "expired at 2026-12-04", "a expiré"),
        (TOKEN_BAD_SIGNATURE, "", 401, "signature does not verify", "signature"),
        (STATE_MISMATCH, "", 400, "state does not match", "Recommencez"),
    ],
)
def test_token_refusals_say_what_failed(
    reason: str, detail: str, status: int, english: str, french: str
) -> None:
    decision = token_refused(reason, detail)
    assert not decision.allowed and decision.reason == reason and decision.status == status
    assert english in decision.sentence and french in decision.sentence_fr
