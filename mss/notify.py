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

import datetime as dt
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
from mss.config import Settings, portal_url
from mss.db import utcnow
from mss.directory.models import Guardianship, Patient, PatientState
from mss.errors import ConfigError
from mss.followups import Delivery, FollowUp, FollowUps, patient_recipient
from mss.jobs import Job, JobContext, JobRunner, PartlyDone, PermanentFailure, enqueue
from mss.policy.notice_recipients import (
    RECORD_KINDS,
    GroupedNotice,
    NoticeContact,
    PendingNotice,
    decide_channels,
    decide_notice_recipients,
    group_notices,
    merged_notices,
)
from mss.policy.notices import decide_delivery_notice
from mss.services import Services


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

NOTIFY_JOB = "notify.patient"
MESSAGES_LINK = "/messages"  # the portal's inbox, where a "new_message" notice leads

# What each kind tells, as a phrase a grouped notice lists ("3 nouveautés : ...").
WHAT = {
    "new_message": "un nouveau message",
    "new_document": "un nouveau document dans le dossier médical",
    "emergency_access": "un accès en urgence au dossier médical",
    "emergency_access_minor": "un accès en urgence au dossier médical d'un enfant dont vous "
    "êtes le représentant légal",
    "account_activated": "l'ouverture du compte",
    "appointment": "un rendez-vous ajouté, modifié ou annulé dans l'agenda",
    "appointment_reminder": "un rappel de rendez-vous",
    "health_reminder": "un rappel de l'agenda santé",
    "account_changed": "un changement d'état du compte",
    "login_locked": "une connexion bloquée après plusieurs essais",
    "retention_warning": "une messagerie bientôt vidée faute de connexion",
}
FOR_A_CHILD = "l'espace santé d'un enfant dont vous êtes le représentant légal"


def grouped_text(group: GroupedNotice) -> tuple[str, str]:
    """Subject and sentence of one grouped notice: a single notice keeps its own wording; a
    guardian is told it concerns a child's space; several list what arrived. No medical
    content, no name."""
    (first, count), *others = group.kinds
    if not group.as_guardian and not others and count == 1:
        return NOTICES[first].subject, NOTICES[first].sentence
    items = ", ".join(
        WHAT[kind] + (f" ({number} fois)" if number > 1 else "") for kind, number in group.kinds
    )
    total = sum(number for _kind, number in group.kinds)
    if group.as_guardian:
        return (
            "Du nouveau dans l'espace santé d'un enfant",
            f"Du nouveau dans {FOR_A_CHILD} : {items}. Ouvrez son espace depuis le vôtre "
            "(« Menu », « Espace affiché »).",
        )
    return (
        "Nouveautés dans votre espace santé",
        f"{total} nouveautés dans votre espace santé : {items}.",
    )


NO_CONTENT_NOTE = (
    "Pour votre confidentialité, ce message ne contient aucune information médicale : "
    "connectez-vous à votre espace pour la consulter."
)


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


def sms_provider(settings: Settings, services: Services | None = None) -> SmsProvider:
    """The configured provider; ``services.sms`` (set by the hub or a test) wins when present."""
    if services is not None and services.sms is not None:
        return services.sms
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


def notice_payloads(patient: Reachable, kind: str, link: str) -> list[dict[str, Any]]:
    """The ``notify.patient`` job payloads of one notice: one per channel the patient has (one,
    at least)."""
    if kind not in NOTICES:
        raise ValueError(f"unknown notification kind {kind!r}; known: {', '.join(sorted(NOTICES))}")
    if not link.startswith("/") or link.startswith("//"):
        raise ValueError(f"a notification link must be a portal path, not {link!r}")
    # A channel the patient has no address for is carried by the first payload (see
    # ``carried_channels``): a minor without any still has guardians to tell of a record notice
    # (no other kind goes to guardians: without an address, it has nobody to reach).
    channels = [c for c, address in (("email", patient.email), ("sms", patient.phone)) if address]
    return [
        {"patient_id": patient.id, "kind": kind, "link": link, "channel": channel}
        for channel in channels or (["email"] if kind in RECORD_KINDS else [])
    ]


def carried_channels(channel: str, email: str | None, phone: str | None) -> tuple[str, ...]:
    """The channels a payload of ``channel`` covers for a patient with these addresses now: its
    own, and those the patient has no address for when it is the first payload of the notice
    (a guardian may have the address the minor lacks)."""
    have = [c for c, address in (("email", email), ("sms", phone)) if address]
    first = have[0] if have else "email"
    missing = tuple(c for c in ("email", "sms") if c not in have)
    return (channel, *missing) if channel == first else (channel,)


def notify_patient(session: AsyncSession, patient: Reachable, kind: str, link: str) -> list[Job]:
    """Add the jobs of ``notice_payloads`` to the caller's transaction."""
    key = uuid.uuid4().hex
    return [
        enqueue(session, NOTIFY_JOB, payload, dedupe_key=f"notify:{key}:{payload['channel']}")
        for payload in notice_payloads(patient, kind, link)
    ]


def _delivery_notice(delivery: Delivery) -> list[dict[str, Any]]:
    """The notice a message delivered to a patient's mailbox brings (``mss.policy.notices``)."""
    notice = decide_delivery_notice(delivery.recipient, agenda_follows=delivery.patient_told)
    if notice is None or delivery.patient is None:
        return []
    return notice_payloads(delivery.patient, notice, MESSAGES_LINK)


def register_follow_ups(follow_ups: FollowUps) -> None:
    """After a delivery to a patient's mailbox, the patient is told a message arrived (unless a
    follow-up that tells them itself, such as the agenda's, follows)."""
    follow_ups.register(
        FollowUp(
            NOTIFY_JOB, wants=lambda message: True, to=patient_recipient, payloads=_delivery_notice
        )
    )


_patients = Patient.__table__.c
_guardianships = Guardianship.__table__.c
_CONTACTS = select(
    _patients.id,
    _patients.state,
    _patients.email,
    _patients.phone,
    _patients.notify_channels,
    _patients.birth_date,
).where(_patients.id.in_(bindparam("patient_ids", expanding=True)))
_GUARDIANS = select(_guardianships.minor_id, _guardianships.guardian_id).where(
    _guardianships.minor_id.in_(bindparam("patient_ids", expanding=True))
)
GROUP_KEY = "notify-group"  # dedupe_key prefix of a notice held back to be grouped


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


async def _hold_for_grouping(
    ctx: JobContext, payloads: Sequence[dict[str, Any]], window: float
) -> None:
    """Put each notice into its patient's and channel's group that is still waiting (or start
    one, sent ``window`` seconds from now): what falls within the window goes out as one."""
    due = utcnow() + dt.timedelta(seconds=window)
    wanted: dict[tuple[int, str], list[dict[str, str]]] = {}
    for payload in payloads:
        wanted.setdefault((payload["patient_id"], payload["channel"]), []).append(
            {"kind": payload["kind"], "link": payload["link"]}
        )
    async with ctx.db.write() as session:
        for (patient_id, channel), notices in wanted.items():
            prefix = f"{GROUP_KEY}:{patient_id}:{channel}:"
            waiting = (
                await session.scalars(
                    select(Job)
                    .where(
                        Job.kind == NOTIFY_JOB,
                        Job.state == "pending",
                        Job.dedupe_key.startswith(prefix),
                    )
                    .order_by(Job.id)
                    .limit(1)
                    .with_for_update()
                )
            ).first()
            if waiting is not None:
                waiting.payload = {
                    **waiting.payload,
                    "notices": merged_notices(waiting.payload["notices"], notices),
                }
            else:
                payload = {
                    "patient_id": patient_id,
                    "channel": channel,
                    "notices": merged_notices((), notices),
                }
                enqueue(
                    session,
                    NOTIFY_JOB,
                    payload,
                    run_after=due,
                    dedupe_key=prefix + uuid.uuid4().hex,
                )


def _contact(row: Any) -> NoticeContact:
    return NoticeContact(row.id, row.email, row.phone, row.notify_channels, row.birth_date)


async def _deliver(ctx: JobContext, payloads: list[dict[str, Any]]) -> dict[int, Exception]:
    """Send the notifications; those that failed, by position (an exception raised: none was
    sent).

    With ``[notifications] group_seconds``, a new notice is first held in its patient's and
    channel's group (done at once); the group's own job sends it with the others. Who is told
    (a minor's guardians), on which channel (the patient's choice) and how notices group
    together are ``mss.policy.notice_recipients`` decisions.
    """
    settings = ctx.services.settings
    window = settings.notifications.group_seconds
    fresh = [p for p in payloads if "notices" not in p]
    if window > 0 and fresh:
        await _hold_for_grouping(ctx, fresh, window)
        payloads = [p if "notices" in p else {} for p in payloads]  # held: nothing to send now
    notices_of = {
        index: payload.get("notices") or ([payload] if "kind" in payload else [])
        for index, payload in enumerate(payloads)
    }
    patient_ids = sorted({p["patient_id"] for p in payloads if p})
    if not patient_ids:
        return {}
    async with ctx.db.read() as session:
        guardians_of: dict[int, list[int]] = {}
        for minor_id, guardian_id in await session.execute(
            _GUARDIANS, {"patient_ids": patient_ids}
        ):
            guardians_of.setdefault(minor_id, []).append(guardian_id)
        everyone = sorted({*patient_ids, *(g for gs in guardians_of.values() for g in gs)})
        contacts = {
            row.id: row for row in await session.execute(_CONTACTS, {"patient_ids": everyone})
        }
    today = utcnow().date()
    # Without a window each payload is its own group; with one, a group's job carries them all.
    pending: dict[int, list[PendingNotice]] = {}
    for index, notices in notices_of.items():
        patient = contacts.get(payloads[index].get("patient_id", -1))
        if patient is None or patient.state in (PatientState.OPPOSED, PatientState.CLOSED):
            continue  # nobody to tell any more: done, not failed
        channels = carried_channels(payloads[index]["channel"], patient.email, patient.phone)
        guardians = [
            _contact(contacts[g]) for g in guardians_of.get(patient.id, ()) if g in contacts
        ]
        for notice in notices:
            for recipient in decide_notice_recipients(
                notice["kind"],
                _contact(patient),
                guardians,
                today,
                own_contact_age=settings.notifications.minor_own_contact_age,
            ):
                told = contacts[recipient.patient_id]
                if told.state in (PatientState.OPPOSED, PatientState.CLOSED):
                    continue
                chosen = decide_channels(_contact(told))
                for channel in (c for c in channels if c in chosen):
                    pending.setdefault(index, []).append(
                        PendingNotice(
                            told.id,
                            channel,
                            notice["kind"],
                            notice["link"],
                            recipient.as_guardian,
                            int(notice.get("count", 1)),
                        )
                    )
    outbox: list[dict[str, Any]] = []
    mails: dict[int, Mail] = {}
    texts: dict[int, tuple[SmsProvider, str, str]] = {}
    groups: list[GroupedNotice] = []
    carried: dict[int, list[int]] = {}  # payload -> the groups that carry its notices
    for index, notices_pending in pending.items():
        for group in group_notices(notices_pending):
            carried.setdefault(index, []).append(len(groups))
            groups.append(group)
    for number, group in enumerate(groups):
        told = contacts[group.recipient_id]
        subject, sentence = grouped_text(group)
        link = portal_link(settings, group.link)
        if group.channel == "email":
            body = f"{sentence}\n\n{link}\n\n{NO_CONTENT_NOTE}\n"
            if settings.notifications.smarthost:
                mails[number] = (told.email, subject, body)
            else:
                outbox.append(_email_record(told.email, subject, body))
        else:
            text = f"{sentence} {link}"
            provider = sms_provider(settings, ctx.services)
            if isinstance(provider, OutboxSmsProvider):
                outbox.append(_sms_record(told.phone, text))
            else:
                texts[number] = (provider, told.phone, text)
    append_outbox(settings, *outbox)
    failed_groups: dict[int, Exception] = {}
    positions = list(mails)
    for number, error in (await send_emails(settings, list(mails.values()))).items():
        failed_groups[positions[number]] = error
    for number, (provider, phone, text) in texts.items():
        try:
            await provider.send(phone, text)  # providers are per-message APIs
        except Exception as exc:  # noqa: BLE001 - this one failed, the others still go
            failed_groups[number] = exc
    # A payload failed when none of the notices it brought went out (retrying it then sends
    # nothing twice); one that reached somebody is done.
    return {
        index: failed_groups[numbers[0]]
        for index, numbers in carried.items()
        if all(number in failed_groups for number in numbers)
    }


def register_jobs(runner: JobRunner) -> None:
    """Register the notification job kind with a runner."""
    runner.register(NOTIFY_JOB, deliver_notification, ordered=False, batch=deliver_notifications)


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
