"""The login's one-time code: accepted once (RFC 6238 §5.2 for an authenticator app's code)."""

from __future__ import annotations

from mss.policy.decision import OK, Decision, refuse

TOTP_ALREADY_USED = refuse(
    535,
    "5.7.8",
    "This one-time code was already used",
    "Ce code a déjà servi. Attendez que votre application affiche le suivant (toutes les "
    "30 secondes), puis saisissez-le.",
)
SENT_CODE_ALREADY_USED = refuse(
    535,
    "5.7.8",
    "This one-time code was already used",
    "Ce code a déjà servi : demandez-en un nouveau avec le bouton ci-dessous.",
)


def decide_totp_step(step: int, last_accepted_step: int | None) -> Decision:
    """A code of time step ``step`` is accepted only after every step already accepted (no
    replay)."""
    if last_accepted_step is not None and step <= last_accepted_step:
        return TOTP_ALREADY_USED
    return OK
