"""Notifications to patients by e-mail and SMS, never with medical content.

A notification is a job (``notify.patient``), added in the caller's
transaction by ``notify_patient`` and retried by the job runner. Its text is
a fixed French sentence chosen by kind plus a link to the portal: nothing of
the message or document it announces leaves the hub.

E-mail goes through ``settings.notifications.smarthost`` (aiosmtplib);
without a smarthost, and for SMS with the ``outbox`` provider, each
notification is appended as one JSON line to ``<data_dir>/outbox/outbox.jsonl``,
which ``mss dev outbox`` prints. The runner hands the job handler its claimed
notifications together (``deliver_notifications``): one read of the contacts,
one write to the outbox, one smarthost connection for all of them.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

import click
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.command import hub_command
from mss.config import Settings
from mss.db import utcnow
from mss.directory.models import Patient, PatientState
from mss.errors import ConfigError
from mss.jobs import Job, JobContext, JobRunner, PartlyDone, PermanentFailure, enqueue


@dataclass(frozen=True)
class Notice:
    """The fixed wording of one kind of notification."""

    subject: str
    sentence: str


NOTICES: dict[str, Notice] = {
    "new_message": Notice(
        "Nouveau message dans votre espace santé",
        "Vous avez reçu un nouveau message dans votre messagerie de santé.",
    ),
    "new_document": Notice(
        "Nouveau document dans votre espace santé",
        "Un nouveau document a été ajouté à votre dossier médical.",
    ),
    "emergency_access": Notice(
        "Accès en urgence à votre dossier médical",
        "Un professionnel de santé a consulté votre dossier médical en urgence.",
    ),
    "emergency_access_minor": Notice(
        "Accès en urgence au dossier médical d'un enfant",
        "Un professionnel de santé a consulté en urgence le dossier médical d'un "
        "enfant dont vous êtes le représentant légal. Le détail est dans son "
        "historique des accès, depuis votre espace.",
    ),
    "account_activated": Notice(
        "Votre messagerie santé est ouverte",
        "Votre compte de messagerie de santé est maintenant ouvert. Pour choisir "
        "votre mot de passe, utilisez le code d'activation reçu par courrier.",
    ),
    "appointment": Notice(
        "Votre agenda santé a changé",
        "Un rendez-vous a été ajouté, modifié ou annulé dans votre agenda de santé.",
    ),
    "appointment_reminder": Notice(
        "Rappel de rendez-vous",
        "Vous avez un rendez-vous prochainement : consultez votre agenda de santé.",
    ),
    "health_reminder": Notice(
        "Rappel de votre agenda santé",
        "Un rappel que vous avez enregistré dans votre agenda de santé arrive à échéance.",
    ),
    "account_changed": Notice(
        "Modification de votre compte", "L'état de votre compte de messagerie de santé a changé."
    ),
    "login_locked": Notice(
        "Connexion à votre espace santé bloquée",
        "Après plusieurs essais de connexion infructueux, la connexion à votre compte a "
        "été bloquée temporairement depuis l'appareil qui les a faits. Vous pouvez toujours "
        "vous connecter depuis le vôtre ; si ces essais ne viennent pas de vous, changez "
        "votre mot de passe.",
    ),
    "retention_warning": Notice(
        "Votre messagerie santé n'est plus utilisée",
        "Vous ne vous êtes pas connecté à votre messagerie de santé depuis près d'un an. "
        "Sans connexion de votre part d'ici un mois, ses messages seront supprimés ; "
        "votre dossier médical n'est pas concerné.",
    ),
}

MESSAGES_LINK = "/messages"  # the portal's inbox, where a "new_message" notice leads

NO_CONTENT_NOTE = (
    "Pour votre confidentialité, ce message ne contient aucune information médicale : "
    "connectez-vous à votre espace pour la consulter."
)


def portal_url(settings: Settings) -> str:
    """The public address of the portal, without a trailing slash."""
    if settings.portal.public_url:
        return settings.portal.public_url.rstrip("/")
    return f"https://{settings.hostname}:{settings.ports.https}"


def notification_text(settings: Settings, kind: str, link: str) -> tuple[str, str]:
    """Subject and body for ``kind``: the fixed sentence and the portal link, nothing else."""
    notice = NOTICES[kind]
    return (
        notice.subject,
        f"{notice.sentence}\n\n{portal_link(settings, link)}\n\n{NO_CONTENT_NOTE}\n",
    )


def portal_link(settings: Settings, link: str) -> str:
    """A link inside the portal: a path, joined to the public address (other hosts are refused)."""
    base = portal_url(settings)
    if link.startswith(base):
        return link
    if not link.startswith("/") or link.startswith("//"):
        raise ValueError(f"a notification link must be a portal path, not {link!r}")
    return base + link


# -- the development outbox --------------------------------------------------------------


def outbox_file(settings: Settings) -> Path:
    return settings.data_path / "outbox" / "outbox.jsonl"


def append_outbox(settings: Settings, *records: dict[str, Any]) -> None:
    """Append one JSON line per record, with one write (O_APPEND, so concurrent writers do not
    interleave)."""
    if not records:
        return
    path = outbox_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    at = utcnow().isoformat()
    lines = "".join(
        json.dumps({"at": at, **record}, ensure_ascii=False) + "\n" for record in records
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def read_outbox(settings: Settings) -> list[dict[str, Any]]:
    """Every record of the outbox, oldest first (empty when nothing was sent)."""
    path = outbox_file(settings)
    if not path.is_file():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


# -- SMS ---------------------------------------------------------------------------------


class SmsProvider(Protocol):
    """Sends one text message to a phone number."""

    async def send(self, phone: str, text: str) -> None: ...


class OutboxSmsProvider:
    """Development provider: the SMS is appended to the outbox file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, phone: str, text: str) -> None:
        append_outbox(self.settings, _sms_record(phone, text))  # one small append


def _sms_record(phone: str, text: str) -> dict[str, Any]:
    return {"channel": "sms", "to": phone, "text": text}


def sms_provider(settings: Settings, services: dict[str, Any] | None = None) -> SmsProvider:
    """The configured provider; ``services["sms"]`` (set by the hub) wins when present."""
    if services and services.get("sms") is not None:
        provider: SmsProvider = services["sms"]
        return provider
    if settings.notifications.sms_provider == "outbox":
        return OutboxSmsProvider(settings)
    raise ConfigError(
        f"notifications.sms_provider {settings.notifications.sms_provider!r} is unknown; "
        "the hub knows 'outbox'"
    )


# -- e-mail ------------------------------------------------------------------------------


def _sender(settings: Settings) -> str:
    return settings.notifications.sender or f"ne-pas-repondre@{settings.domain}"


Mail = tuple[str, str, str]  # to, subject, plain-text body


def _email_record(to: str, subject: str, body: str) -> dict[str, Any]:
    return {"channel": "email", "to": to, "subject": subject, "text": body}


async def send_email(settings: Settings, to: str, subject: str, body: str) -> None:
    """Send a plain-text mail through the smarthost, or append it to the outbox without one."""
    if not settings.notifications.smarthost:
        append_outbox(settings, _email_record(to, subject, body))
        return
    failed = await send_emails(settings, [(to, subject, body)])
    if failed:
        raise failed[0]


async def send_emails(settings: Settings, mails: Sequence[Mail]) -> dict[int, Exception]:
    """Send mails through the smarthost over one connection; what failed, by position in ``mails``.

    A refused recipient or a 5xx answer fails that mail alone, with ``PermanentFailure``,
    and the next ones are still sent. When the connection cannot be made or is lost, the
    mail being sent and those after it fail with that error (to be retried).
    """
    import aiosmtplib

    if not mails:
        return {}
    failed: dict[int, Exception] = {}
    unsent = dict(enumerate(mails))
    try:
        async with aiosmtplib.SMTP(
            hostname=settings.notifications.smarthost,
            port=settings.notifications.smarthost_port,
            timeout=30,
        ) as client:
            for index, (to, subject, body) in list(unsent.items()):
                try:
                    await client.send_message(_email_message(settings, to, subject, body))
                except Exception as exc:
                    if isinstance(exc, (ConnectionError, TimeoutError)) or not client.is_connected:
                        raise
                    failed[index] = _smtp_failure(exc, to)
                del unsent[index]
    except Exception as exc:  # noqa: BLE001 - each unsent mail fails with it
        failed.update({index: _smtp_failure(exc, to) for index, (to, _, _) in unsent.items()})
    return failed


def _email_message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = _sender(settings)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=settings.domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def _smtp_failure(exc: Exception, to: str) -> Exception:
    """The error of a mail the smarthost did not take: its refusals are permanent, the rest is
    retried."""
    import aiosmtplib

    failure = exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        failure = PermanentFailure(f"the smarthost refused {to}: {exc}")
    elif isinstance(exc, aiosmtplib.SMTPResponseException) and 500 <= exc.code < 600:
        failure = PermanentFailure(
            f"the smarthost refused the notification: {exc.code} {exc.message}"
        )
    if failure is not exc:
        failure.__cause__ = exc
    return failure


# -- the notification job ----------------------------------------------------------------


class Reachable(Protocol):
    """Whom a notice is for: a ``Patient``, or a ``mss.directory.facts.PatientContact``."""

    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...


def notify_patient(session: AsyncSession, patient: Reachable, kind: str, link: str) -> list[Job]:
    """Add one job per channel the patient has (e-mail, SMS) to the caller's transaction."""
    if kind not in NOTICES:
        raise ValueError(f"unknown notification kind {kind!r}; known: {', '.join(sorted(NOTICES))}")
    if not link.startswith("/") or link.startswith("//"):
        raise ValueError(f"a notification link must be a portal path, not {link!r}")
    key = uuid.uuid4().hex
    jobs = []
    for channel, address in (("email", patient.email), ("sms", patient.phone)):
        if address:
            jobs.append(
                enqueue(
                    session,
                    "notify.patient",
                    {"patient_id": patient.id, "kind": kind, "link": link, "channel": channel},
                    dedupe_key=f"notify:{key}:{channel}",
                )
            )
    return jobs


_patients = Patient.__table__.c
_CONTACTS = select(_patients.id, _patients.state, _patients.email, _patients.phone).where(
    _patients.id.in_(bindparam("patient_ids", expanding=True))
)


async def deliver_notification(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job handler: send one notification on one channel to the patient's current address."""
    failed = await _deliver(ctx, [payload])  # the batch of one
    if failed:
        raise failed[0]


async def deliver_notifications(ctx: JobContext, payloads: list[dict[str, Any]]) -> None:
    """Batch job handler: ``deliver_notification`` for each payload, in order, all at once.

    One statement reads the contacts; every text is built and the outbox lines are
    written (one write) before any mail or SMS goes out, so when one of those steps
    raises nothing was sent and the runner runs each job alone. The mails then share
    one smarthost connection and the SMS go one by one to the provider; one that fails
    does not stop the others, and the batch raises ``PartlyDone`` naming those that
    went: the runner at once runs only the failed ones again, alone, with their usual
    failure accounting (a refused recipient fails, a lost connection is retried later).
    No notification that went out is sent again.
    """
    failed = await _deliver(ctx, payloads)
    if failed:
        reasons = "; ".join(f"{type(error).__name__}: {error}" for error in failed.values())
        raise PartlyDone(
            set(range(len(payloads))) - failed.keys(),
            f"{len(failed)} of {len(payloads)} notifications failed: {reasons}",
        )


async def _deliver(ctx: JobContext, payloads: list[dict[str, Any]]) -> dict[int, Exception]:
    """Send the notifications; those that failed, by position (an exception raised: none was
    sent)."""
    settings: Settings = ctx.services["settings"]
    async with ctx.db.read() as session:
        rows = await session.execute(
            _CONTACTS, {"patient_ids": sorted({p["patient_id"] for p in payloads})}
        )
        contacts = {row.id: row for row in rows}
    outbox: list[dict[str, Any]] = []
    mails: dict[int, Mail] = {}
    texts: dict[int, tuple[SmsProvider, str, str]] = {}
    for index, payload in enumerate(payloads):
        patient = contacts.get(payload["patient_id"])
        if patient is None or patient.state in (PatientState.OPPOSED, PatientState.CLOSED):
            continue  # nobody to tell any more: done, not failed
        subject, body = notification_text(settings, payload["kind"], payload["link"])
        if payload["channel"] == "email" and patient.email:
            if settings.notifications.smarthost:
                mails[index] = (patient.email, subject, body)
            else:
                outbox.append(_email_record(patient.email, subject, body))
        elif payload["channel"] == "sms" and patient.phone:
            text = f"{NOTICES[payload['kind']].sentence} {portal_link(settings, payload['link'])}"
            provider = sms_provider(settings, ctx.services)
            if isinstance(provider, OutboxSmsProvider):
                outbox.append(_sms_record(patient.phone, text))
            else:
                texts[index] = (provider, patient.phone, text)
    append_outbox(settings, *outbox)
    failed: dict[int, Exception] = {}
    positions = list(mails)
    for number, error in (await send_emails(settings, list(mails.values()))).items():
        failed[positions[number]] = error
    for index, (provider, phone, text) in texts.items():
        try:
            await provider.send(phone, text)  # providers are per-message APIs
        except Exception as exc:  # noqa: BLE001 - this one failed, the others still go
            failed[index] = exc
    return failed


def register_jobs(runner: JobRunner) -> None:
    """Register the notification job kind with a runner."""
    runner.register(
        "notify.patient", deliver_notification, ordered=False, batch=deliver_notifications
    )


# -- mss dev outbox ----------------------------------------------------------------------


@click.group()
def dev() -> None:
    """Development tools."""


@dev.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON lines.")
@click.option("--last", type=int, default=0, help="Only the last N entries.")
@click.option("--to", "recipient", default="", help="Only what was sent to this phone or address.")
@hub_command
async def outbox(settings: Settings, as_json: bool, last: int, recipient: str) -> None:
    """Print the SMS and e-mails the development outbox received."""
    records = [r for r in read_outbox(settings) if not recipient or r.get("to") == recipient]
    if last > 0:
        records = records[-last:]
    if not records:
        click.echo(f"the outbox {outbox_file(settings)} is empty")
        return
    for record in records:
        if as_json:
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        head = f"{record['at']}  {record['channel'].upper():<5} to {record['to']}"
        if record.get("subject"):
            head += f"  «{record['subject']}»"
        click.echo(head)
        for line in str(record["text"]).rstrip().splitlines():
            click.echo(f"    {line}")
