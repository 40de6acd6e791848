"""A patient account's life: which transition each state allows, and the new password's rules.

::

    CREATED ──code issued──▶ OPPOSITION_WINDOW ──code + password──▶ ACTIVE ◀──▶ DEACTIVATED
                                   │   └──deadline passed (job)──▶ ACTIVE          │
                                   └──code, before the deadline──▶ OPPOSED         ▼
                                                        ACTIVE / DEACTIVATED ──▶ CLOSED

Pure decisions over the account's state: ``mss.patients`` loads the patient,
checks the activation code's hash, asks here, then applies the transition
(or raises ``LifecycleRefused`` carrying the refusal). The portal shows the
French sentence; the CLI and logs the English one.
"""

from __future__ import annotations

import datetime as dt

from mss.policy.decision import OK, Decision, refuse_http
from mss.policy.vocabulary import PatientState

MIN_PASSWORD_LENGTH = 12
NEW_ACCOUNT_STATES = frozenset({PatientState.CREATED, PatientState.OPPOSITION_WINDOW})

WRONG_ACTIVATION_CODE = refuse_http(
    401,
    "wrong_activation_code",
    "This INS and this activation code do not match: check both on the letter you received",
    "Ce numéro INS et ce code d'activation ne correspondent pas. "
    "Vérifiez les deux sur le courrier que vous avez reçu.",
)


def _no(reason: str, sentence: str, sentence_fr: str) -> Decision:
    return refuse_http(409, reason, sentence, sentence_fr)


def _date(when: dt.datetime | None) -> tuple[str, str]:
    if when is None:
        return "(unknown date)", "(date inconnue)"
    return f"{when:%Y-%m-%d}", f"{when:%d/%m/%Y}"


def needs_activation_code(state: PatientState, has_code: bool, has_password: bool) -> bool:
    """A new account that has neither a code nor a password yet."""
    return state in NEW_ACCOUNT_STATES and not has_code and not has_password


def decide_code_issue(
    state: PatientState, has_code: bool, has_password: bool, ins: str
) -> Decision:
    """An activation code is issued once, to a new account without a password."""
    if not needs_activation_code(state, has_code, has_password):
        return _no(
            "code_already_issued",
            f"patient {ins} already has an activation code or an open account",
            f"le patient {ins} a déjà un code d'activation ou un compte ouvert",
        )
    return OK


def decide_new_password(password: str, ins: str = "") -> Decision:
    """At least 12 characters, letters and a digit, space or symbol, and not the INS."""
    problems: list[tuple[str, str]] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(
            (
                f"The password has {len(password)} characters: it needs at least "
                f"{MIN_PASSWORD_LENGTH}.",
                f"Le mot de passe compte {len(password)} caractères : il en faut au moins "
                f"{MIN_PASSWORD_LENGTH}.",
            )
        )
    if not any(ch.isalpha() for ch in password):
        problems.append(
            ("The password must contain letters.", "Le mot de passe doit contenir des lettres.")
        )
    if not any(not ch.isalpha() for ch in password):
        problems.append(
            (
                "The password must contain at least one digit, space or symbol.",
                "Le mot de passe doit contenir au moins un chiffre, une espace ou un symbole.",
            )
        )
    if ins and ins.lower() in password.lower():
        problems.append(
            (
                "The password must not contain the INS.",
                "Le mot de passe ne doit pas contenir votre numéro INS.",
            )
        )
    if problems:
        return refuse_http(
            422,
            "weak_password",
            " ".join(english for english, _ in problems),
            " ".join(french for _, french in problems),
        )
    return OK


def decide_activation(state: PatientState, has_password: bool) -> Decision:
    """With the letter's code: open the account, or set the first password after an automatic
    activation."""
    if state is PatientState.OPPOSED:
        return _no(
            "opposed",
            "The patient opposed the creation of this account: it cannot be activated",
            "Vous vous êtes opposé à la création de ce compte : il ne peut pas être activé.",
        )
    if state is PatientState.CLOSED:
        return _no(
            "closed",
            "This account was closed: it can no longer be activated",
            "Ce compte a été clôturé : il ne peut plus être activé.",
        )
    if state is PatientState.DEACTIVATED or has_password:
        return _no(
            "already_active",
            "This account is already activated: log in with the password",
            "Ce compte est déjà activé : connectez-vous avec votre mot de passe.",
        )
    return OK


def decide_opposition(
    state: PatientState, deadline: dt.datetime | None, now: dt.datetime
) -> Decision:
    """With the letter's code, the patient refuses the account until the deadline."""
    if state is not PatientState.OPPOSITION_WINDOW or (deadline is not None and now >= deadline):
        day, day_fr = _date(deadline)
        return _no(
            "opposition_over",
            f"The opposition period ended on {day}: the account is open; it can be closed "
            "from the patient's space (My account)",
            f"Le délai d'opposition a pris fin le {day_fr} : votre compte est "
            "ouvert. Vous pouvez le clôturer depuis votre espace, rubrique « Mon compte ».",
        )
    return OK


def decide_auto_activation(
    state: PatientState, deadline: dt.datetime | None, now: dt.datetime
) -> Decision:
    """The hub activates an account once its opposition window has ended."""
    if state is not PatientState.OPPOSITION_WINDOW or deadline is None or deadline > now:
        return _no(
            "not_due",
            "The account is not in an opposition window that has ended",
            "Le compte n'est pas dans un délai d'opposition terminé",
        )
    return OK


def decide_deactivation(state: PatientState) -> Decision:
    """Pause an active account: it receives no message until reactivated."""
    if state is not PatientState.ACTIVE:
        return _no(
            "not_active",
            "Only an active account can be deactivated",
            "Seul un compte actif peut être désactivé.",
        )
    return OK


def decide_reactivation(state: PatientState) -> Decision:
    """Reopen a deactivated account."""
    if state is not PatientState.DEACTIVATED:
        return _no(
            "not_deactivated",
            "Only a deactivated account can be reactivated",
            "Seul un compte désactivé peut être réactivé.",
        )
    return OK


def decide_closing(state: PatientState) -> Decision:
    """Close an active or deactivated account for good."""
    if state not in (PatientState.ACTIVE, PatientState.DEACTIVATED):
        return _no(
            "not_open",
            "Only an open (active or deactivated) account can be closed",
            "Seul un compte ouvert (actif ou désactivé) peut être clôturé.",
        )
    return OK
