"""What the demo patients find once signed in: reports in "Mon dossier", conversations with
their doctors, a convocation in the agenda, a filled profile, and so an access history.

Everything goes through the paths real data takes: the reports are deposited in the DMP
store as the document API does (``dmp_bridge.documents.deposit_document``, with the
professional as the viewer); every message goes through ``Gateway.submit``, the one path of
the portal and of SMTP submission, so the professionals' messages are S/MIME signed with
their development certificates, the patients' replies obey the professional-initiates rule
and a ``[FIN]`` closes a conversation; the convocation is an iTIP REQUEST from the hospital's
APP mailbox, which the ``agenda.convocation`` job turns into an appointment. The job runner
runs once at the end, so the agenda is filled when ``mss init --demo`` returns.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mss.config import Settings
from mss.db import Database, utcnow
from mss.errors import HubError

if TYPE_CHECKING:
    from mss.smtp_gateway import Accepted

PARIS = ZoneInfo("Europe/Paris")
LOINC_CONSULTATION = ("11488-4", "Compte rendu de consultation")
LOINC_LABORATORY = ("11502-2", "Compte rendu d'examens biologiques")


class DemoStepRefused(HubError):
    """The hub refused a step of the demo data (a message, a deposit): a bug to show, not hide."""


@dataclass(frozen=True)
class DemoMessage:
    """One message of a demo conversation: who writes, the subject, the text."""

    sender: str  # an address, or "patient" for the patient's (or the minor's) own mailbox
    subject: str
    text: str


@dataclass(frozen=True)
class DemoReport:
    """One report a professional deposits (idNat of the author), how old, with a PDF or not."""

    author: str
    days_ago: int
    type_code: tuple[str, str]
    title: str
    sections: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    with_pdf: bool = False


@dataclass(frozen=True)
class DemoPatientStory:
    """What one demo patient has: reports, conversations, a convocation, profile items."""

    ins: str
    gender: str
    reports: tuple[DemoReport, ...]
    conversations: tuple[tuple[DemoMessage, ...], ...]
    convocation: tuple[int, str, str, str]  # in how many days (at 9:30), what, service, place
    profile: tuple[tuple[str, str, str, str], ...]  # category, label, detail, when
    reminder: tuple[str, str, int] | None = None  # the agenda's: kind, label, due in N days


DUPONT, MARTIN = "810001234565", "810002345675"


def stories(domain: str) -> tuple[DemoPatientStory, ...]:
    """Marie Durand's, Louis Petit's and his daughter Emma's (a minor) demo data."""
    dupont, martin = f"jean.dupont@{domain}", f"claire.martin@{domain}"
    return (
        DemoPatientStory(
            ins="285037505612306",
            gender="F",
            reports=(
                DemoReport(
                    MARTIN,
                    21,
                    LOINC_CONSULTATION,
                    "Consultation de cardiologie",
                    (
                        (
                            "Motif",
                            (
                                "Palpitations à l'effort depuis deux mois, adressée par le "
                                "Dr Jean Dupont.",
                            ),
                            (),
                        ),
                        (
                            "Examen",
                            (
                                "Tension 12/7, pouls régulier à 72 par minute.",
                                "Électrocardiogramme normal.",
                            ),
                            (),
                        ),
                        (
                            "Conclusion",
                            ("Palpitations bénignes, sans maladie du cœur.",),
                            ("Limiter le café", "Échographie du cœur dans un mois"),
                        ),
                    ),
                    with_pdf=True,
                ),
                DemoReport(
                    DUPONT,
                    12,
                    LOINC_LABORATORY,
                    "Bilan sanguin",
                    (
                        (
                            "Résultats",
                            ("Prise de sang du matin, à jeun.",),
                            (
                                "TSH : 2,1 mUI/L (normale 0,4 à 4)",
                                "Hémoglobine : 13,2 g/dL (normale 12 à 16)",
                                "Glycémie à jeun : 0,92 g/L (normale 0,70 à 1,10)",
                            ),
                        ),
                        (
                            "Commentaire",
                            ("Résultats normaux : le traitement de la thyroïde est bien dosé.",),
                            (),
                        ),
                    ),
                ),
            ),
            conversations=(
                (
                    DemoMessage(
                        dupont,
                        "Résultats de votre bilan sanguin",
                        "Bonjour Madame Durand,\n\nVos résultats sont arrivés : ils sont "
                        "normaux. Vous les trouverez dans votre dossier médical.\n\n"
                        "Dr Jean Dupont",
                    ),
                    DemoMessage(
                        "patient",
                        "Re: Résultats de votre bilan sanguin",
                        "Bonjour Docteur,\n\nMerci. Dois-je continuer le Lévothyrox à la même "
                        "dose ?\n\nMarie Durand",
                    ),
                    DemoMessage(
                        dupont,
                        "[FIN] Re: Résultats de votre bilan sanguin",
                        "Oui, la même dose, un comprimé le matin. Nous referons le point dans "
                        "six mois.\n\nDr Jean Dupont",
                    ),
                ),
                (
                    DemoMessage(
                        martin,
                        "Votre échographie du cœur",
                        "Bonjour Madame Durand,\n\nJe vous propose une échographie du cœur : "
                        "le service vous envoie une convocation. Vous pouvez me répondre ici "
                        "si vous avez une question.\n\nDr Claire Martin",
                    ),
                ),
            ),
            convocation=(
                10,
                "Échographie du cœur",
                "Cardiologie",
                "Centre hospitalier, bâtiment B, 2e étage",
            ),
            profile=(
                ("treatment", "Lévothyrox 75 µg", "Un comprimé le matin à jeun", "depuis 2016"),
                ("medical_history", "Hypothyroïdie", "Suivie par le Dr Dupont", "2016"),
                ("medical_history", "Appendicectomie", "", "2001"),
                ("family_history", "Diabète de type 2", "Chez mon père", ""),
                ("vaccination", "Diphtérie, tétanos, poliomyélite (rappel)", "", "2020"),
            ),
            reminder=("screening", "Frottis de dépistage du col de l'utérus", 90),
        ),
        DemoPatientStory(
            ins="179066912304583",
            gender="M",
            reports=(
                DemoReport(
                    DUPONT,
                    30,
                    LOINC_CONSULTATION,
                    "Consultation de médecine générale",
                    (
                        ("Motif", ("Renouvellement du traitement de la tension.",), ()),
                        (
                            "Examen",
                            ("Tension 13/8 au cabinet, 12/8 en automesure.", "Poids 82 kg."),
                            (),
                        ),
                        (
                            "Conduite à tenir",
                            ("Traitement inchangé pour six mois.",),
                            ("Amlodipine 5 mg, un comprimé le soir", "Bilan lipidique à faire"),
                        ),
                    ),
                    with_pdf=True,
                ),
                DemoReport(
                    DUPONT,
                    15,
                    LOINC_LABORATORY,
                    "Bilan lipidique",
                    (
                        (
                            "Résultats",
                            ("Prise de sang à jeun.",),
                            (
                                "Cholestérol total : 2,10 g/L",
                                "LDL-cholestérol : 1,30 g/L (objectif sous 1,60)",
                                "Triglycérides : 1,05 g/L",
                            ),
                        ),
                        ("Commentaire", ("Bilan satisfaisant, rien à changer.",), ()),
                    ),
                ),
            ),
            conversations=(
                (
                    DemoMessage(
                        dupont,
                        "Votre bilan lipidique",
                        "Bonjour Monsieur Petit,\n\nVotre bilan lipidique est bon. Pensez à "
                        "prendre rendez-vous dans six mois pour le renouvellement.\n\n"
                        "Dr Jean Dupont",
                    ),
                    DemoMessage(
                        "patient",
                        "Re: Votre bilan lipidique",
                        "Merci Docteur, je prendrai rendez-vous en mars.\n\nLouis Petit",
                    ),
                ),
            ),
            convocation=(
                17,
                "Consultation de cardiologie",
                "Cardiologie",
                "Centre hospitalier, bâtiment B, 2e étage",
            ),
            profile=(
                ("treatment", "Amlodipine 5 mg", "Un comprimé le soir", "depuis 2022"),
                ("medical_history", "Hypertension artérielle", "", "2022"),
                ("allergy", "Pollens de graminées", "Rhinite au printemps", ""),
                ("vaccination", "Grippe saisonnière", "", "2025"),
            ),
        ),
        DemoPatientStory(
            ins="215086912304696",
            gender="F",
            reports=(
                DemoReport(
                    DUPONT,
                    45,
                    LOINC_CONSULTATION,
                    "Consultation de suivi de l'enfant",
                    (
                        ("Motif", ("Examen de suivi annuel.",), ()),
                        (
                            "Examen",
                            (
                                "Taille 1,41 m, poids 33 kg : croissance régulière.",
                                "Vue et audition normales.",
                            ),
                            (),
                        ),
                        (
                            "Conclusion",
                            ("Enfant en bonne santé.",),
                            ("Rappel de vaccin diphtérie, tétanos, coqueluche, polio à prévoir",),
                        ),
                    ),
                    with_pdf=True,
                ),
                DemoReport(
                    DUPONT,
                    44,
                    ("11369-6", "Historique des vaccinations"),
                    "Vaccinations à jour",
                    (
                        (
                            "Vaccins reçus",
                            (),
                            (
                                "Diphtérie, tétanos, coqueluche, polio : 2, 4 et 11 mois, 6 ans",
                                "Rougeole, oreillons, rubéole : 12 et 16 mois",
                                "Méningocoque C : 5 et 12 mois",
                            ),
                        ),
                        ("Prochain vaccin", ("Rappel entre 11 et 13 ans.",), ()),
                    ),
                ),
            ),
            conversations=(
                (
                    DemoMessage(
                        dupont,
                        "Rappel de vaccin pour Emma",
                        "Bonjour,\n\nEmma a l'âge du rappel de vaccin diphtérie, tétanos, "
                        "coqueluche et polio (entre 11 et 13 ans). Voulez-vous que je "
                        "vous fasse l'ordonnance ?\n\nDr Jean Dupont",
                    ),
                    DemoMessage(
                        "patient",
                        "Re: Rappel de vaccin pour Emma",
                        "Bonjour Docteur,\n\nOui, merci. Nous passerons la chercher au "
                        "cabinet.\n\nLouis Petit",
                    ),
                    DemoMessage(
                        dupont,
                        "[FIN] Re: Rappel de vaccin pour Emma",
                        "L'ordonnance vous attend à l'accueil du cabinet.\n\nDr Jean Dupont",
                    ),
                ),
            ),
            convocation=(
                24,
                "Consultation de pédiatrie",
                "Pédiatrie",
                "Centre hospitalier, hall A, consultations",
            ),
            profile=(
                ("allergy", "Arachide", "Plaques rouges et gonflement des lèvres", "2019"),
                ("vaccination", "Rougeole, oreillons, rubéole", "Deux doses", "2016"),
                ("medical_history", "Asthme du jeune enfant", "Plus de crise depuis 2021", ""),
            ),
            reminder=("vaccination", "Rappel diphtérie, tétanos, coqueluche, polio", 60),
        ),
    )


def _text_message(sender: str, to: str, subject: str, text: str, **headers: str) -> EmailMessage:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(utcnow())
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text, cte="8bit")
    return message


def _signed(message: EmailMessage, account: dict[str, Any]) -> bytes:
    """The message S/MIME signed (detached) with the account's development certificate."""
    from mss.crypto import smime
    from mss.crypto.keys import load_certs, load_key

    cert = load_certs(Path(account["certificate"]))[0]
    key = load_key(Path(account["key"]))
    return smime.sign(message.as_bytes(policy=email.policy.SMTP), cert, key)


class DemoSender:
    """Sends the demo messages through the gateway, as the portal and SMTP submission do."""

    def __init__(self, settings: Settings, db: Database, accounts: list[dict[str, Any]]) -> None:
        from mss.serve import register_follow_ups
        from mss.services import Services
        from mss.smtp_gateway import Gateway

        register_follow_ups()
        self.settings, self.db = settings, db
        self.services = Services(settings)
        self.gateway = Gateway(settings, db, self.services)
        self.accounts = {a["address"]: a for a in accounts}

    async def send(self, sender: str, to: str, raw: bytes, *, channel: str) -> Accepted:
        """Submit one message through the gateway; a refusal is an error here."""
        from mss.directory.facts import mailbox_facts

        async with self.db.read() as session:
            facts = await mailbox_facts(session, sender)
        if facts is None:
            raise DemoStepRefused(f"no mailbox {sender} for the demo data")
        accepted = await self.gateway.submit(facts, [to], raw, channel=channel)
        if not accepted.decision.allowed:
            raise DemoStepRefused(f"demo message from {sender} refused: {accepted.decision}")
        return accepted

    async def conversation(
        self, space: Any, writer: Any, messages: tuple[DemoMessage, ...]
    ) -> None:
        """The messages in order, each answering the one before (In-Reply-To, References).

        The patient's (or, in a minor's space, the guardian's) are written as the portal's
        reply page writes them (``portal.compose.build_message``) and recorded as it does.
        """
        from mss.directory.store import patient_mailbox_address
        from mss.patients import Actor, audit
        from mss.smtp_gateway import new_message_id
        from portal.compose import Author, build_message

        patient_address = patient_mailbox_address(self.settings, space.ins)
        references: list[str] = []
        for item in messages:
            message_id = new_message_id(self.settings.domain)
            if item.sender != "patient":
                headers = {"Message_ID": message_id}
                if references:
                    headers |= {"In_Reply_To": references[-1], "References": " ".join(references)}
                message = _text_message(
                    item.sender, patient_address, item.subject, item.text, **headers
                )
                raw = _signed(message, self.accounts[item.sender])
                await self.send(item.sender, patient_address, raw, channel="submission")
                references.append(message_id)
                continue
            to = messages[0].sender
            written_by = writer.display_name if writer.id != space.id else ""
            raw = build_message(
                Author(patient_address, space.display_name, written_by),
                to,
                item.subject,
                item.text,
                message_id,
                now=utcnow(),
                in_reply_to=references[-1],
                references=references,
            )
            await self.send(patient_address, to, raw, channel="portal")
            async with self.db.write() as session:
                audit(
                    session,
                    "message_sent",
                    Actor.person(writer, space, "portal"),
                    space,
                    target=to,
                    message_id=message_id,
                    in_reply_to=references[-1],
                )
            references.append(message_id)

    async def convocation(self, patient: Any, story: DemoPatientStory, now: dt.datetime) -> None:
        """An iTIP REQUEST (iMIP, RFC 6047) from the hospital's APP mailbox, signed."""
        from mss.agenda.itip import EventData, build_request
        from mss.directory.store import patient_mailbox_address
        from mss.smtp_gateway import new_message_id

        app = next(a for a in self.accounts.values() if "APP" in a["role"])
        days, summary, service, place = story.convocation
        day = (now.astimezone(PARIS) + dt.timedelta(days=days)).date()
        start = dt.datetime.combine(day, dt.time(9, 30), tzinfo=PARIS)
        to = patient_mailbox_address(self.settings, patient.ins)
        event = EventData(
            uid=f"demo-convocation-{patient.ins}@{self.settings.domain}",
            sequence=0,
            start=start,
            end=start + dt.timedelta(minutes=45),
            summary=summary,
            location=place,
            organizer=app["address"],
            organizer_name=app["name"],
            attendee=to,
            attendee_name=patient.display_name,
        )
        message = _text_message(
            app["address"],
            to,
            f"Convocation : {summary}",
            f"Bonjour,\n\n{patient.display_name} est attendu(e) le {start:%d/%m/%Y} à "
            f"{start:%H} h {start:%M} en {service}.\nLieu : {place}\n\nVous pouvez confirmer "
            "ou décliner ce rendez-vous dans l'agenda de votre espace santé.\n",
            Message_ID=new_message_id(self.settings.domain),
        )
        message.add_alternative(
            build_request(event, now), subtype="calendar", params={"method": "REQUEST"}
        )
        await self.send(app["address"], to, _signed(message, app), channel="submission")

    async def run_jobs(self) -> None:
        """The follow-up jobs the messages queued (the agenda's, the notifications), once."""
        from mss.serve import job_runner

        await job_runner(self.db, self.services).drain()


async def _deposit_reports(
    session: Any, settings: Settings, patient: Any, story: DemoPatientStory, now: dt.datetime
) -> None:
    """The story's reports, deposited by their authors through the document API's store."""
    from dmp_bridge.access import Viewer
    from dmp_bridge.dispensation import LOINC_OID
    from dmp_bridge.documents import DocumentDraft, deposit_document
    from dmp_bridge.report_cda import (
        Report,
        ReportAuthor,
        ReportPatient,
        ReportSection,
        build_report,
        report_pdf,
    )
    from mss.directory import store
    from mss.directory.models import Organisation

    who = ReportPatient(
        ins=patient.ins,
        family=patient.family_name.upper(),
        given=patient.given_names,
        birth_date=patient.birth_date,
        gender=story.gender,
    )
    for n, item in enumerate(story.reports, start=1):
        professional = await store.find_professional_by_id_nat(session, item.author)
        if professional is None:
            raise DemoStepRefused(f"no professional {item.author} for the demo data")
        organisation = (
            await session.get(Organisation, professional.organisation_id)
            if professional.organisation_id is not None
            else None
        )
        author = ReportAuthor(
            id_nat=professional.id_nat,
            family=professional.family_name.upper(),
            given=professional.given_names,
            profession_code="10",
            profession_label="Médecin",
            organisation=organisation.name if organisation else "Cabinet du Dr Dupont",
            organisation_finess=(organisation.finess or "") if organisation else "",
        )
        moment = (
            (now - dt.timedelta(days=item.days_ago))
            .astimezone(PARIS)
            .replace(hour=10, minute=15, second=0, microsecond=0)
        )
        report = Report(
            type_code=item.type_code[0],
            type_label=item.type_code[1],
            title=item.title,
            effective_time=moment,
            sections=tuple(ReportSection(t, p, i) for t, p, i in item.sections),
        )
        root = f"1.2.250.1.999.8.{professional.id_nat}"
        extension = f"demo-{patient.ins}-{n}"
        await deposit_document(
            session,
            Viewer.for_professional(professional, organisation, source="api"),
            patient,
            DocumentDraft(
                content=build_report(
                    who, author, report, document_root=root, document_extension=extension
                ),
                mime_type="text/xml",
                title=item.title,
                unique_id=f"{root}^{extension}",
                type_code=item.type_code[0],
                type_system=LOINC_OID,
                type_label=item.type_code[1],
                author_id_nat=professional.id_nat,
                author_name=f"Dr {professional.given_names} {professional.family_name}",
                author_institution=author.organisation,
                author_institution_id=organisation.finess if organisation else None,
                creation_time=moment,
                pdf=report_pdf(who, author, report) if item.with_pdf else None,
                source="api",
            ),
        )


async def create_demo_activity(
    settings: Settings, db: Database, accounts: list[dict[str, Any]]
) -> list[str]:
    """The demo patients' reports, profiles, conversations and convocations; what it did."""
    from mss.agenda.store import add_health_reminder
    from mss.directory import store
    from mss.directory.models import Patient
    from mss.profile.store import add_item

    now = utcnow()
    told = stories(settings.domain)
    patients: dict[str, Patient] = {}
    async with db.write() as session:
        for story in told:
            patient = await store.find_patient_by_ins(session, story.ins)
            if patient is None:
                raise DemoStepRefused(f"no demo patient {story.ins}")
            patients[story.ins] = patient
            await _deposit_reports(session, settings, patient, story, now)
        guardians = {a["ins"]: a["guardian_ins"] for a in accounts if "guardian_ins" in a}
        for story in told:
            patient = patients[story.ins]
            minor = story.ins in guardians  # a guardian fills in a minor's profile
            author = patients[guardians[story.ins]] if minor else patient
            for category, label, detail, when in story.profile:
                await add_item(
                    session,
                    patient.id,
                    category=category,
                    label=label,
                    detail=detail,
                    when=when,
                    author_kind="guardian" if minor else "patient",
                    author=author.ins,
                    author_name=author.display_name,
                    source="portal",
                    now=now,
                )
            if story.reminder is not None:
                kind, label, days = story.reminder
                due_on = (now.astimezone(PARIS) + dt.timedelta(days=days)).date()
                await add_health_reminder(
                    session, patient.id, kind=kind, label=label, due_on=due_on
                )
    sender = DemoSender(settings, db, accounts)
    messages = 0
    for story in told:
        patient = patients[story.ins]
        writer = patients[guardians[story.ins]] if story.ins in guardians else patient
        for conversation in story.conversations:
            await sender.conversation(patient, writer, conversation)
            messages += len(conversation)
        await sender.convocation(patient, story, now)
    await sender.run_jobs()
    reports = sum(len(story.reports) for story in told)
    return [
        f"demo record: {reports} reports, {messages} messages and {len(told)} convocations "
        f"for {len(told)} patients"
    ]
