"""The access history of a patient's space, read from the audit log, in French."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import AuditEvent, patient_events
from mss.audit_chain import patient_chain
from mss.audit_verify import RecentlyVerified
from portal.clock import PARIS
from portal.french import moment
from portal.messages import Directory
from portal.professionals import cards_for

log = logging.getLogger(__name__)
VERIFIED = RecentlyVerified()  # per process: a long chain is walked whole at most every 10 minutes

# Each kind of event groups actions by prefix; "acces" takes what no other kind names.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "connexions": ("Connexions", ("login", "logout", "session_")),
    "messages": ("Messages lus et envoyés", ("message_", "message.", "mdn_", "conversation.")),
    "services": ("Services connectés", ("service_",)),
    "consentements": ("Consentements", ("consent", "authoris", "authoriz", "block", "unblock")),
    "compte": ("Compte", ("account_", "activation_", "totp_", "password_")),
    "acces": ("Accès à vos données", ()),
}

# Every action the hub records, in the words of the patient's history (a test reads every audit
# call of the code and finds its action here, so no new action can show up raw).
SENTENCES = {
    # connexions
    "login": "Connexion",
    "login_failed": "Échec de connexion",
    "logout": "Déconnexion",
    "session_expired": "Déconnexion après inactivité",
    "space_opened": "Ouverture de l'espace",
    "space_refused": "Accès refusé à un autre espace",
    "professional_login": "Connexion d'un professionnel par Pro Santé Connect",
    "professional_login_refused": "Connexion d'un professionnel par Pro Santé Connect refusée",
    "professional_logout": "Déconnexion d'un professionnel",
    # messages
    "message_read": "Message lu",
    "message_sent": "Message envoyé",
    "message_delivered": "Message reçu",
    "message.received": "Message reçu",
    "message.sent": "Message transmis par la messagerie",
    "message_refused": "Envoi refusé",
    "message_attachment_read": "Pièce jointe téléchargée",
    "message.dsn": "Avis de non-remise d'un message reçu",
    "message.mdn": "Accusé de traitement envoyé à l'expéditeur d'un document",
    "message.error_email": "Avis d'erreur envoyé à l'expéditeur d'un document",
    "mdn_sent": "Accusé de lecture envoyé",
    "delivery_status_read": "Suivi d'un message consulté par son expéditeur (reçu, ouvert, classé)",
    "mdn_refused": "Accusé de lecture non envoyé",
    "conversation.closed": "Conversation clôturée par le professionnel",
    # compte
    "account_activated": "Compte activé",
    "account_auto_activated": "Compte activé automatiquement",
    "account_opposed": "Opposition à la création du compte",
    "account_deactivated": "Compte désactivé",
    "account_reactivated": "Compte réactivé",
    "account_closed": "Compte clôturé",
    "activation_code_issued": "Courrier d'activation préparé",
    "activation_failed": "Code d'activation erroné",
    "activation_code_emailed": "Code d'activation envoyé par e-mail",
    "activation_identity_checked": "Identité vérifiée (INS et date de naissance) pour activer "
    "le compte sans le courrier : code envoyé",
    "activation_identity_failed": "Numéro INS ou date de naissance erroné lors d'une activation "
    "sans le courrier",
    "account_opposition_withdrawn": "Opposition retirée : compte activé",
    "account_reopened": "Compte clôturé rouvert",
    "account_handover_notice": "Représentants légaux prévenus de la remise prochaine de l'espace "
    "à son titulaire",
    "account_guardianship_ended": "Fin de l'accès d'un représentant légal à l'espace",
    "account_handed_over": "Espace remis à son titulaire : il est désormais le seul à y accéder",
    "totp_enrolled": "Application d'authentification enregistrée",
    "totp_removed": "Application d'authentification retirée",
    "account_notices_changed": "Choix de recevoir les avis par e-mail ou par SMS modifié",
    "patient.created": "Compte de messagerie santé créé",
    "patient.updated": "Identité ou coordonnées mises à jour",
    "guardian.added": "Représentant légal enregistré",
    "mailbox.password_set": "Mot de passe de messagerie défini par l'équipe du service",
    "mailbox.retention_warned": "Avertissement : messagerie inutilisée depuis près d'un an",
    "mailbox.purged": "Messages supprimés (règles de conservation)",
    "directory.imported": "Annuaire des professionnels mis à jour",
    # dossier médical
    "document_read": "Document consulté",
    "document_list": "Liste des documents du dossier consultée",
    "document_filed": "Document ajouté au dossier",
    "document_replaced": "Nouvelle version d'un document",
    "document_masked": "Document masqué aux professionnels",
    "document_unmasked": "Document de nouveau visible par les professionnels",
    "document_revealed": "Document rendu visible au patient",
    "document_deleted": "Document supprimé du dossier",
    "document_access_refused": "Accès à un document refusé",
    "document_filing_refused": "Document reçu par message, non ajouté au dossier",
    "dmp_filing": "Documents d'un message classés dans le dossier",
    "emergency_access": "Accès en urgence au dossier",
    "dispensation_history_read": "Historique des médicaments délivrés en pharmacie consulté",
    "consent_changed": "Consentement modifié",
    # agenda et profil
    "agenda.appointment_created": "Rendez-vous ajouté à l'agenda",
    "agenda.appointment_updated": "Rendez-vous modifié",
    "agenda.appointment_cancelled": "Rendez-vous annulé",
    "agenda.appointment_answered": "Réponse à une convocation",
    "agenda.convocation_refused": "Convocation reçue mais illisible : l'agenda n'a pas changé",
    "agenda.sharing_changed": "Choix des professionnels qui voient l'agenda modifié",
    "agenda.shared_read": "Agenda consulté par un professionnel",
    "agenda.appointment_added_by_professional": (
        "Rendez-vous ajouté à l'agenda par un professionnel"
    ),
    "agenda.shared_access_refused": "Accès à l'agenda refusé à un professionnel",
    "profile.item_added": "Information ajoutée au profil médical",
    "profile.item_removed": "Information retirée du profil médical",
    "profile_read": "Profil médical consulté par un professionnel",
    "profile_item_read": "Information du profil médical consultée par un professionnel",
    "profile_access_refused": "Accès au profil médical refusé",
    "profile.summary_sent": "Résumé du profil médical envoyé à un professionnel",
    # services connectés (catalogue)
    "service_connected": "Service connecté à l'espace",
    "service_revoked": "Service déconnecté de l'espace",
    "service_document_list": "Liste des documents consultée par un service connecté",
    "service_document_read": "Document lu par un service connecté",
    "service_access_refused": "Accès refusé à un service connecté",
    "service_measurement_written": "Mesure enregistrée par un service connecté",
    "service_profile_read": "Profil médical consulté par un service connecté",
    "service_profile_item_read": "Information du profil médical lue par un service connecté",
    "service_agenda_read": "Agenda consulté par un service connecté",
    "catalogue.service_added": "Service ajouté au catalogue",
    "catalogue.service_status": "Statut d'un service du catalogue changé",
}
UNKNOWN_ACTION = "Autre opération sur votre espace"
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ADDRESS_QUOTED = re.compile(r"<?([\w.+-]+@[\w-]+(?:\.[\w-]+)+)>?")

# Where an event came from, when it is not a device's address.
SOURCES = {
    "portal": "depuis l'espace patient",
    "submission": "depuis la messagerie sécurisée du professionnel",
    "smtp": "par la messagerie sécurisée",
    "relay": "par la messagerie d'un autre établissement",
    "api": "depuis le logiciel du professionnel",
    "service": "avec l'autorisation que vous lui avez donnée",
}

ACTOR_KINDS = {
    "patient": "vous-même",
    "guardian": "représentant légal",
    "professional": "professionnel de santé",
    "service": "service connecté",
}
SERVICE = "le service de messagerie santé"
OPERATOR = "l'équipe qui exploite le service"
DETAILS = {
    "factor": {"sms": "code par SMS", "email": "code par e-mail", "totp": "application"},
    "reason": {
        "password": "mot de passe erroné",
        "code": "code erroné",
        "code_reused": "code déjà utilisé",
        "inactive": "messagerie inutilisée",
        "closed_account": "compte clôturé",
    },
    "channels": {"both": "e-mail et SMS", "email": "e-mail seulement", "sms": "SMS seulement"},
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
    "category": {"allergy": "allergies", "treatment": "traitements en cours"},
    "service": {},
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


def _prefixes(kind: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The action prefixes a kind takes, and those it leaves out ("acces": every other kind's)."""
    if kind not in KINDS:
        return (), ()
    prefixes = KINDS[kind][1]
    if prefixes:
        return prefixes, ()
    return (), tuple(p for k, (_l, ps) in KINDS.items() if k != kind for p in ps)


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
    """The events of one patient, newest first, filtered by kind and by day (Paris time); who
    acted is named from the directory (two statements at most for the whole page)."""
    starting, not_starting = _prefixes(kind)
    events = await patient_events(
        session,
        patient_id,
        starting=starting,
        not_starting=not_starting,
        since=_paris_midnight(since) if since is not None else None,
        before=_paris_midnight(until + dt.timedelta(days=1)) if until is not None else None,
        limit=limit,
        offset=offset,
    )
    names = await _actor_names(session, events)
    return [describe(event, names) for event in events]


def _is_address(actor: str) -> bool:
    return "@" in actor


async def _actor_names(
    session: AsyncSession, events: Sequence[AuditEvent]
) -> dict[str, tuple[str, str]]:
    """The name and role of each actor the directory knows (a mailbox's address or a
    professional's idNat): ``("Dr Jean Dupont", "médecin, CHU de Nantes")``."""
    addresses = {e.actor for e in events if _is_address(e.actor)} | {
        found  # the addresses a refusal's sentence quotes
        for e in events
        for value in (e.detail or {}).values()
        if isinstance(value, str)
        for found in ADDRESS.findall(value)
    }
    id_nats = {
        e.actor
        for e in events
        if e.actor_kind == "professional" and not _is_address(e.actor) and e.actor.isdigit()
    } | {  # the professional a consent change names
        str(e.detail["id_nat"]) for e in events if e.detail and e.detail.get("id_nat")
    }
    names: dict[str, tuple[str, str]] = {}
    if addresses:
        directory = Directory(session)
        await directory.describe(addresses=addresses)
        for address in addresses:
            counterpart = await directory.by_address(address)
            if counterpart.known:
                names[address] = (
                    counterpart.name,
                    _role(counterpart.profession, counterpart.organisation),
                )
    if id_nats:
        for id_nat, found in (await cards_for(session, id_nats)).items():
            if found.id is not None:
                names[id_nat] = (found.name, _role(found.profession, found.institution))
    return names


def _role(profession: str, organisation: str) -> str:
    return ", ".join(part for part in (_lower_first(profession), organisation) if part)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text and not text[1:2].isupper() else text


def _detail(
    key: str, value: object, detail: dict[str, object], names: dict[str, tuple[str, str]]
) -> str:
    if key == "id_nat" and isinstance(value, str):
        rpps = f"RPPS {value[1:]}" if len(value) == 12 and value.startswith("8") else value
        name, role = names.get(value, ("", ""))
        profession = role.split(", ")[0]  # without the organisation: the line stays short
        return ", ".join(part for part in (name, profession if name else "", rpps) if part)
    if key == "change" and value == "treating_doctor" and not detail.get("id_nat"):
        return "médecin traitant retiré"
    return _without_addresses(DETAILS[key].get(str(value), str(value)), names)


def _without_addresses(text: str, names: dict[str, tuple[str, str]]) -> str:
    """A sentence with each mail address it quotes (``<jean.dupont@...>``) replaced by the name
    the directory gives it, or by « votre correspondant »."""
    return ADDRESS_QUOTED.sub(
        lambda m: names.get(m.group(1), ("votre correspondant", ""))[0] or "votre correspondant",
        text,
    )


def who_acted(event: AuditEvent, names: dict[str, tuple[str, str]]) -> str:
    """The actor in a patient's words: never an address, an INS or a host name."""
    detail = event.detail or {}
    given = str(detail.get("actor_name") or "")
    if event.actor_kind == "system":
        return given if given and given != event.actor else SERVICE
    if event.actor_kind == "operator":
        return OPERATOR
    role = ACTOR_KINDS.get(event.actor_kind, "")
    known_name, known_role = names.get(event.actor, ("", ""))
    if event.actor_kind in ("patient", "guardian"):
        return f"{given or known_name or 'une personne'} ({role})"
    if known_name:
        return f"{known_name} ({known_role})" if known_role else known_name
    if given:
        return f"{given} ({role or ACTOR_KINDS['professional']})"
    return "un professionnel de santé"


def where_from(source: str) -> str:
    """``depuis l'adresse 10.1.2.3`` for a device, a channel in words, or nothing (the hub's own
    work)."""
    try:
        ipaddress.ip_address(source)
    except ValueError:
        return SOURCES.get(source, "")
    return f"depuis l'adresse {source}"


def describe(event: AuditEvent, names: dict[str, tuple[str, str]] | None = None) -> HistoryLine:
    detail = event.detail or {}
    extras = [
        text
        for text in (
            _detail(key, detail[key], detail, names or {}) for key in DETAILS if detail.get(key)
        )
        if text
    ]
    return HistoryLine(
        when=moment(event.at),
        iso=event.at.isoformat(),
        what=SENTENCES.get(event.action, UNKNOWN_ACTION),
        who=who_acted(event, names or {}),
        where=where_from(event.source),
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
