"""Follow-up work after a delivery, as hooks each package registers at start-up.

Delivery (``mss.smtp_gateway.delivery``) names no follow-up: it asks ``registry``
which follow-ups want the message (``wanted``, once per message, before the
delivery transaction), then, inside that transaction, for each local mailbox the
message was stored in, enqueues the jobs of those follow-ups (``jobs_for``). A job
thus exists if and only if the delivery committed, and runs later through
``mss.jobs`` with the handler its package registered for the kind.

A package adds a follow-up in its own files only: a ``register_follow_ups(registry)``
function that registers a ``FollowUp`` (a job kind, a predicate on the message,
optionally a predicate on the recipient and the payloads), a handler for the kind in
its ``register_jobs``, and both called where the hub's parts are wired
(``mss.serve.register_follow_ups`` and ``mss.serve.job_runner``).

A follow-up that tells the patient about the message itself (the agenda's job sends
the one notice of a convocation) says so with ``tells_patient``: those are evaluated
first, and the others see ``Delivery.patient_told``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from mss.message import Message
from mss.policy import MailboxFacts


class PatientReach(Protocol):
    """The patient behind a patient mailbox: ``mss.directory.facts.PatientContact``."""

    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...


@dataclass(frozen=True)
class Delivery:
    """One delivered message stored in one local mailbox, inside the delivery transaction."""

    message: Message  # the one reading of the message (``mss.message``)
    stored_message_id: int
    recipient: MailboxFacts
    patient: PatientReach | None  # the patient behind a patient mailbox
    mail_from: str
    original_recipient: str | None = None  # ``rfc822;<address>`` (ORCPT or the RCPT as given)
    patient_told: bool = False  # a ``tells_patient`` follow-up of this delivery tells the patient


def every_recipient(delivery: Delivery) -> bool:
    return True


def patient_recipient(delivery: Delivery) -> bool:
    """The recipient is a patient's mailbox."""
    return delivery.recipient.is_patient


def message_and_mailbox(delivery: Delivery) -> list[dict[str, Any]]:
    """The default payload: one job naming the stored message and the mailbox."""
    return [{"message_id": delivery.stored_message_id, "mailbox_id": delivery.recipient.id}]


@dataclass(frozen=True)
class FollowUp:
    """A job kind to enqueue after a delivery, and when.

    ``wants`` is asked once per message, by the session, off the shared writer: keep the
    costly look at the message there. ``to`` is asked for each recipient mailbox inside
    the transaction, and ``payloads`` gives the jobs for it (each is deduplicated on the
    stored message, the mailbox and its position).
    """

    kind: str
    wants: Callable[[Message], bool]
    to: Callable[[Delivery], bool] = every_recipient
    payloads: Callable[[Delivery], list[dict[str, Any]]] = message_and_mailbox
    tells_patient: bool = False
    max_attempts: int = 8


@dataclass(frozen=True)
class FollowUpJob:
    """One job a delivery enqueues."""

    kind: str
    payload: dict[str, Any]
    dedupe_key: str
    max_attempts: int


class FollowUpsNotRegistered(RuntimeError):
    """A gateway was started in a process where no follow-up was registered."""


class FollowUps:
    """The follow-ups of this process, by kind (registering a kind again replaces it)."""

    def __init__(self) -> None:
        self._by_kind: dict[str, FollowUp] = {}

    def register(self, follow_up: FollowUp) -> None:
        self._by_kind[follow_up.kind] = follow_up

    def unregister(self, kind: str) -> None:
        self._by_kind.pop(kind, None)

    def kinds(self) -> frozenset[str]:
        return frozenset(self._by_kind)

    def require(self) -> None:
        """Raise unless follow-ups were registered: a hub part that delivers would lose them."""
        if not self._by_kind:
            raise FollowUpsNotRegistered(
                "no follow-up is registered in this process: call mss.serve.register_follow_ups() "
                "where the hub starts, or DMP filing, agenda and notifications are lost"
            )

    def wanted(self, message: Message) -> tuple[FollowUp, ...]:
        """The follow-ups that want ``message``, those that tell the patient first.

        Raises FollowUpsNotRegistered in a process where none was registered: a delivery
        there would silently skip the DMP filing, the agenda and the notifications.
        """
        self.require()
        found = [f for f in self._by_kind.values() if f.wants(message)]
        return tuple(sorted(found, key=lambda f: not f.tells_patient))

    @staticmethod
    def jobs_for(wanted: Sequence[FollowUp], delivery: Delivery) -> Iterable[FollowUpJob]:
        """The jobs of ``wanted`` (from ``wanted()``) for one recipient of the delivery."""
        told = False
        for follow_up in wanted:
            if told and not delivery.patient_told:
                delivery = replace(delivery, patient_told=True)
            if not follow_up.to(delivery):
                continue
            told = told or follow_up.tells_patient
            key = f"{follow_up.kind}:{delivery.stored_message_id}:{delivery.recipient.id}"
            for index, payload in enumerate(follow_up.payloads(delivery)):
                yield FollowUpJob(
                    follow_up.kind,
                    payload,
                    f"{key}:{index}" if index else key,
                    follow_up.max_attempts,
                )


registry = FollowUps()
"""The process's follow-ups, filled at start-up by ``mss.serve.register_follow_ups``."""
