"""The access history of a patient's space, read from the audit log, in French."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import AuditEvent
from mss.audit_chain import patient_chain
from mss.audit_verify import RecentlyVerified
from portal.clock import PARIS
from portal.french import moment

log = logging.getLogger(__name__)
VERIFIED = RecentlyVerified()  # per process: a long chain is walked whole at most every 10 minutes

# Each kind of event groups actions by prefix; "acces" takes what no other kind names.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "connexions": ("Connexions", ("login", "logout", "session_")),
    "messages": ("Messages lus et envoyés", ("message_", "message.", "mdn_", "conversation.")),
    "consentements": ("Consentements", ("consent", "authoris", "authoriz", "block", "unblock")),
    "compte": ("Compte", ("account_", "activation_", "totp_", "password_")),
    "acces": ("Accès à vos données", ()),
}

LABELS = {
    "login": "Connexion",
    "login_failed": "Échec de connexion",
    "logout": "Déconnexion",
    "session_expired": "Déconnexion après inactivité",
    "space_opened": "Ouverture de l'espace",
    "space_refused": "Accès refusé à un autre espace",
    "message_read": "Message lu",
    "message_sent": "Message envoyé",
    "message_delivered": "Message reçu",
    "account_activated": "Compte activé",
    "account_auto_activated": "Compte activé automatiquement",
    "account_opposed": "Opposition à la création du compte",
    "account_deactivated": "Compte désactivé",
    "account_reactivated": "Compte réactivé",
    "account_closed": "Compte clôturé",
    "activation_code_issued": "Courrier d'activation préparé",
    "activation_failed": "Code d'activation erroné",
    "totp_enrolled": "Application d'authentification enregistrée",
    "totp_removed": "Application d'authentification retirée",
    "document_read": "Document consulté",
    "document_filed": "Document ajouté au dossier",
    "emergency_access": "Accès en urgence au dossier",
    "consent_changed": "Consentement modifié",
    "message.received": "Message reçu",
    "message.sent": "Message transmis par la messagerie",
    "message_refused": "Envoi refusé",
    "message_attachment_read": "Pièce jointe téléchargée",
    "mdn_sent": "Accusé de lecture envoyé",
    "mdn_refused": "Accusé de lecture non envoyé",
    "conversation.closed": "Conversation clôturée par le professionnel",
    "mailbox.retention_warned": "Avertissement : messagerie inutilisée depuis près d'un an",
    "mailbox.purged": "Messages supprimés (règles de conservation)",
    "document_list": "Liste des documents du dossier consultée",
    "document_masked": "Document masqué aux professionnels",
    "document_unmasked": "Document de nouveau visible par les professionnels",
    "document_revealed": "Document rendu visible au patient",
    "document_replaced": "Nouvelle version d'un document",
    "document_deleted": "Document supprimé du dossier",
    "document_access_refused": "Accès à un document refusé",
}

ACTOR_KINDS = {
    "patient": "vous-même",
    "guardian": "représentant légal",
    "professional": "professionnel",
    "system": "le service",
    "operator": "administrateur",
}
DETAILS = {
    "factor": {"sms": "code par SMS", "email": "code par e-mail", "totp": "application"},
    "reason": {
        "password": "mot de passe erroné",
        "code": "code erroné",
        "code_reused": "code déjà utilisé",
        "inactive": "messagerie inutilisée",
        "closed_account": "compte clôturé",
    },
    "change": {
        "authorised": "professionnel autorisé",
        "authorisation_withdrawn": "autorisation retirée",
        "blocked": "professionnel bloqué",
        "unblocked": "professionnel débloqué",
        "treating_doctor": "médecin traitant désigné",
        "break_glass_opposed": "opposition à l'accès en urgence",
        "break_glass_allowed": "fin de l'opposition à l'accès en urgence",
        "dmp_opposed": "opposition au dossier médical",
        "dmp_allowed": "dossier médical rouvert",
    },
    "title": {},
    "rendition": {"pdf": "PDF", "original": ""},
    "id_nat": {},
}


@dataclass(frozen=True)
class HistoryLine:
    when: str
    iso: str
    what: str
    who: str
    where: str
    detail: str


def kind_of(action: str) -> str:
    for kind, (_label, prefixes) in KINDS.items():
        if prefixes and action.startswith(prefixes):
            return kind
    return "acces"


def _matches(prefixes: tuple[str, ...]) -> ColumnElement[bool]:
    return or_(*[AuditEvent.action.startswith(p) for p in prefixes])


def history_query(
    patient_id: int,
    kind: str | None,
    since: dt.date | None,
    until: dt.date | None,
    limit: int,
    offset: int,
) -> Select[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.patient_id == patient_id)
    if kind in KINDS:
        prefixes = KINDS[kind][1]
        if prefixes:
            query = query.where(_matches(prefixes))
        else:
            others = [p for k, (_l, ps) in KINDS.items() if k != kind for p in ps]
            query = query.where(not_(_matches(tuple(others))))
    if since is not None:
        query = query.where(AuditEvent.at >= _paris_midnight(since))
    if until is not None:
        query = query.where(AuditEvent.at < _paris_midnight(until + dt.timedelta(days=1)))
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)


def _paris_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)


async def read_history(
    session: AsyncSession,
    patient_id: int,
    kind: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[HistoryLine]:
    """The events of one patient, newest first, filtered by kind and by day (Paris time)."""
    events = (
        await session.scalars(history_query(patient_id, kind, since, until, limit, offset))
    ).all()
    return [describe(event) for event in events]


def _detail(key: str, value: object, detail: dict[str, object]) -> str:
    if key == "id_nat" and isinstance(value, str) and len(value) == 12 and value.startswith("8"):
        return f"RPPS {value[1:]}"
    if key == "change" and value == "treating_doctor" and not detail.get("id_nat"):
        return "médecin traitant retiré"
    return DETAILS[key].get(str(value), str(value))


def describe(event: AuditEvent) -> HistoryLine:
    detail = event.detail or {}
    name = str(detail.get("actor_name") or event.actor)
    role = ACTOR_KINDS.get(event.actor_kind, event.actor_kind)
    who = name if event.actor_kind == "system" else f"{name} ({role})"
    extras = [
        text
        for text in (_detail(key, detail[key], detail) for key in DETAILS if detail.get(key))
        if text
    ]
    return HistoryLine(
        when=moment(event.at),
        iso=event.at.isoformat(),
        what=LABELS.get(event.action, event.action.replace("_", " ")),
        who=who,
        where=event.source or "—",
        detail=", ".join(extras),
    )


async def history_intact(session: AsyncSession, patient_id: int, now: dt.datetime) -> bool:
    """Whether the patient's chain verifies (two statements); a break is logged for the operators.

    The events withheld from the patient are in their chain too: they are checked, never shown,
    and the page does not say which event failed.
    """
    check = await VERIFIED.check(session, patient_chain(patient_id), now)
    if check.broken is not None:
        log.warning("audit chain broken: %s (run 'mss audit verify')", check.broken.describe())
    return check.broken is None
