"""The patient's agenda: convocations (iTIP over S/MIME mail), answers, reminders.

Public API:

- ``read_invitation`` / ``build_request`` / ``build_cancel`` / ``build_reply``
  (``mss.agenda.itip``) and the strict iCalendar reader (``mss.agenda.ical``);
- ``register_follow_ups``: after a delivery, the ``agenda.convocation`` job for a patient
  mailbox receiving a ``text/calendar`` part (``mss.followups``);
- ``answer_convocation`` (``mss.agenda.replies``), called by the portal;
- the store functions the portal uses (``mss.agenda.store``);
- ``register_jobs``: the job kinds ``agenda.convocation``, ``agenda.reminder``
  and ``agenda.health_reminder``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mss.jobs import JobRunner

if TYPE_CHECKING:
    from mss.followups import FollowUps


def register_follow_ups(follow_ups: FollowUps) -> None:
    """After a delivery: read the convocation a patient received (its job tells the patient)."""
    from mss.agenda.convocations import CONVOCATION_JOB
    from mss.followups import FollowUp, patient_recipient

    follow_ups.register(
        FollowUp(
            CONVOCATION_JOB,
            wants=lambda message: message.carries_calendar,
            to=patient_recipient,
            tells_patient=True,
        )
    )


def register_jobs(runner: JobRunner) -> None:
    """Register the agenda's job kinds with a runner."""
    from mss.agenda.convocations import CONVOCATION_JOB, read_convocation, read_convocations
    from mss.agenda.reminders import (
        HEALTH_REMINDER_JOB,
        REMINDER_JOB,
        send_health_reminder,
        send_reminder,
    )

    runner.register(CONVOCATION_JOB, read_convocation, batch=read_convocations)
    runner.register(REMINDER_JOB, send_reminder)
    runner.register(HEALTH_REMINDER_JOB, send_health_reminder)
