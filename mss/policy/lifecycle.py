"""A patient account's life: which transition each state allows, and the new password's rules.

::

    CREATED ──code issued──▶ OPPOSITION_WINDOW ──code + password──▶ ACTIVE ◀──▶ DEACTIVATED
                                   │   └──deadline passed (job)──▶ ACTIVE          │
                                   └──code, before the deadline──▶ OPPOSED         ▼
                                                        ACTIVE / DEACTIVATED ──▶ CLOSED
    OPPOSED ──opposition withdrawn (confirmed)──▶ ACTIVE
    CLOSED ──reopened (confirmed), within the closed account's retention──▶ ACTIVE

Without the letter, a proof of identity (INS + birth date + a code sent to the phone or
e-mail on file) activates, withdraws an opposition or reopens, with a new password.

Pure decisions over the account's state: ``mss.patients`` loads the patient,
checks the activation code's hash, asks here, then applies the transition
(or raises ``LifecycleRefused`` carrying the refusal). The portal shows the
French sentence; the CLI and logs the English one.
"""

from __future__ import annotations

import datetime as dt
import enum

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
            "Vous vous êtes opposé à la création de ce compte. Si vous avez changé d'avis, "
            "activez-le sans le courrier, avec votre date de naissance et un code reçu par "
            "SMS ou e-mail (page « Activer sans le courrier »).",
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


# -- changes of mind: activating after an opposition, reopening after a closing ----------

FRENCH_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def french_date(day: dt.date) -> str:
    """``12 mars 2027``, as a letter or a notice says a date (``1er`` for the first)."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def reopening_deadline(closed_at: dt.datetime, retention_days: int) -> dt.datetime:
    """The last moment a closed account can be reopened: its messages go at the end of its
    retention (``retention.closed_account_days``, ``mss.policy.retention``)."""
    return closed_at + dt.timedelta(days=retention_days)


def decide_opposition_withdrawal(state: PatientState) -> Decision:
    """A person who opposed the account may change their mind and activate it, at any time."""
    if state is not PatientState.OPPOSED:
        return _no(
            "not_opposed",
            "No opposition is recorded for this account: there is nothing to withdraw",
            "Aucune opposition n'est enregistrée pour ce compte : il n'y a rien à annuler.",
        )
    return OK


def decide_reopening(
    state: PatientState, closed_at: dt.datetime | None, retention_days: int, now: dt.datetime
) -> Decision:
    """A closed account can be reopened until the end of its retention, never after."""
    if state is not PatientState.CLOSED:
        return _no(
            "not_closed",
            "Only a closed account can be reopened",
            "Seul un compte clôturé peut être rouvert.",
        )
    if closed_at is None:
        return _no(
            "retention_over",
            "This account was closed before closing dates were kept: it can no longer be reopened",
            "Ce compte a été clôturé il y a trop longtemps : il ne peut plus être rouvert. "
            "Un nouveau compte peut vous être créé par l'établissement qui vous suit.",
        )
    until = reopening_deadline(closed_at, retention_days)
    if now >= until:
        day, day_fr = _date(closed_at)
        end, end_fr = _date(until)
        return _no(
            "retention_over",
            f"This account was closed on {day}; it could be reopened until {end}, when its "
            "messages were deleted: it can no longer be reopened",
            f"Ce compte a été clôturé le {day_fr}. Il pouvait être rouvert jusqu'au {end_fr}, "
            "date à laquelle ses messages ont été effacés : il ne peut plus être rouvert. "
            "Un nouveau compte peut vous être créé par l'établissement qui vous suit.",
        )
    return OK


IDENTITY_NOT_MATCHED = refuse_http(
    401,
    "identity_not_matched",
    "This INS and this birth date do not match any account",
    "Ce numéro INS et cette date de naissance ne correspondent à aucun compte. Vérifiez-les "
    "sur votre carte Vitale ou une attestation de l'Assurance Maladie.",
)
NO_CONTACT_ON_FILE = _no(
    "no_contact",
    "No phone number nor e-mail address is on file to send a code to",
    "Aucun téléphone ni adresse e-mail n'est enregistré pour vous envoyer un code. Utilisez le "
    "courrier d'activation, ou adressez-vous à l'établissement qui a créé votre compte.",
)
SENT_CODE_EXPIRED = refuse_http(
    401,
    "code_expired",
    "This code has expired: ask for a new one",
    "Ce code a expiré : recommencez pour en recevoir un nouveau.",
)
WRONG_SENT_CODE = refuse_http(
    401,
    "wrong_code",
    "This code is not the one that was sent",
    "Ce code n'est pas celui qui vous a été envoyé.",
)
CONFIRMATION_MISSING = refuse_http(
    400,
    "not_confirmed",
    "Tick the box to confirm",
    "Cochez la case pour confirmer votre choix.",
)


class ProofOutcome(str, enum.Enum):
    """What proving one's identity without the letter leads to, by the account's state."""

    ACTIVATE = "activate"  # a new account (or one opened automatically) gets its password
    WITHDRAW_OPPOSITION = "withdraw_opposition"  # opposed: activated after all
    REOPEN = "reopen"  # closed, within its retention: reopened


def decide_identity(ins_and_birth_date_match: bool) -> Decision:
    """The roster must know this INS with this birth date; which one is wrong is not told."""
    return OK if ins_and_birth_date_match else IDENTITY_NOT_MATCHED


def proof_outcome(
    state: PatientState,
    has_password: bool,
    closed_at: dt.datetime | None,
    retention_days: int,
    now: dt.datetime,
) -> tuple[Decision, ProofOutcome | None]:
    """Once the person proved who they are without the letter: may they go on, and to what?"""
    if state is PatientState.OPPOSED:
        return OK, ProofOutcome.WITHDRAW_OPPOSITION
    if state is PatientState.CLOSED:
        reopening = decide_reopening(state, closed_at, retention_days, now)
        return reopening, ProofOutcome.REOPEN if reopening else None
    activation = decide_activation(state, has_password)
    return activation, ProofOutcome.ACTIVATE if activation else None


def decide_confirmation(outcome: ProofOutcome, confirmed: bool) -> Decision:
    """Withdrawing an opposition and reopening a closed account are confirmed by a ticked box."""
    if outcome is not ProofOutcome.ACTIVATE and not confirmed:
        return CONFIRMATION_MISSING
    return OK


def decide_sent_code(matches: bool, expires_at: dt.datetime | None, now: dt.datetime) -> Decision:
    """A code sent by SMS or e-mail: before its expiry, and the very one sent."""
    if expires_at is None or expires_at <= now:
        return SENT_CODE_EXPIRED
    return OK if matches else WRONG_SENT_CODE


# -- the hand-over of a minor's space at the age of majority for health matters ------------


def handover_day(birth_date: dt.date, age: int) -> dt.date:
    """The ``age``-th birthday (a 29 February birth: the 1 March of a common year)."""
    try:
        return birth_date.replace(year=birth_date.year + age)
    except ValueError:
        return dt.date(birth_date.year + age, 3, 1)


def decide_handover(
    birth_date: dt.date | None, has_guardians: bool, today: dt.date, age: int
) -> Decision:
    """On the minor's ``age``-th birthday their space becomes their own: guardians' access ends."""
    if not has_guardians:
        return _no(
            "no_guardians",
            "No guardian acts for this patient: there is nothing to hand over",
            "Aucun représentant légal n'agit pour ce patient : il n'y a rien à transmettre.",
        )
    if birth_date is None:
        return _no(
            "no_birth_date",
            "The birth date is unknown: the space cannot be handed over by age",
            "La date de naissance est inconnue : l'espace ne peut pas être transmis selon l'âge.",
        )
    day = handover_day(birth_date, age)
    if today < day:
        return _no(
            "not_yet",
            f"The space is handed over on {day:%Y-%m-%d}, at {age}",
            f"L'espace sera transmis le {french_date(day)}, aux {age} ans de son titulaire.",
        )
    return OK


def decide_handover_notice(
    birth_date: dt.date | None, has_guardians: bool, today: dt.date, age: int, notice_days: int
) -> Decision:
    """The guardians are told ``notice_days`` before the hand-over (once, by the caller)."""
    if not has_guardians or birth_date is None:
        return decide_handover(birth_date, has_guardians, today, age)
    day = handover_day(birth_date, age)
    if today < day - dt.timedelta(days=notice_days):
        return _no(
            "notice_not_yet",
            f"The guardians are told from {day - dt.timedelta(days=notice_days):%Y-%m-%d}",
            "Les représentants légaux seront prévenus "
            f"{notice_days} jours avant le {french_date(day)}.",
        )
    if today >= day:
        return _no(
            "handover_due",
            "The hand-over is due: it is done, not announced",
            "La transmission de l'espace est due : elle est faite, pas annoncée.",
        )
    return OK


def decide_code_reissue(state: PatientState, has_password: bool) -> Decision:
    """A fresh activation code for an open account nobody can sign in to (a minor's space
    handed over, an opposition withdrawn at the desk): not for a refused or closed account, nor
    one with a password of its own."""
    if state in (PatientState.OPPOSED, PatientState.CLOSED):
        return decide_activation(state, has_password)
    if has_password:
        return _no(
            "already_active",
            "The patient already has a password of their own",
            "Le patient a déjà son propre mot de passe.",
        )
    return OK
