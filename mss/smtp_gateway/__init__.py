"""The SMTP gateway: submission and operator relay listeners, and the one path every message takes.

This module is the gateway's public API; nothing outside ``mss.smtp_gateway`` imports its
other modules (``tests/test_import_graph.py``):

- ``start_smtp_servers`` (for ``mss serve``) and ``SharedConnectionLimiter`` (several SMTP
  processes on the same ports);
- ``register_jobs``: the relay and DSN job kinds (``RELAY_JOB``, ``DSN_JOB``; a relay job
  is tried ``RELAY_ATTEMPTS`` times), which other packages enqueue to send mail out;
- ``register_follow_ups``: a report (MDN, DSN) delivered to a hub mailbox moves the
  delivery status of the message it reports on (``REPORT_JOB``, ``mss.delivery_status``);
- ``Gateway`` (the stages the portal and the agenda reuse), the ``Accepted`` outcome of a
  submission, and ``new_message_id``.

What a delivery is followed by is not here: each package registers it (``mss.followups``).
"""

from __future__ import annotations

from mss.jobs import JobRunner
from mss.smtp_gateway.bounces import run_dsn_job
from mss.smtp_gateway.content import new_message_id
from mss.smtp_gateway.delivery import DSN_JOB, RELAY_ATTEMPTS, RELAY_JOB
from mss.smtp_gateway.protocol import SharedConnectionLimiter
from mss.smtp_gateway.relay import run_relay_job
from mss.smtp_gateway.reports import REPORT_JOB, register_follow_ups, run_report_job
from mss.smtp_gateway.server import start_smtp_servers
from mss.smtp_gateway.stages import Accepted, Gateway


def register_jobs(runner: JobRunner) -> None:
    """Register the gateway's job kinds: outbound relay and delivery status notifications."""
    runner.register(RELAY_JOB, run_relay_job)
    runner.register(DSN_JOB, run_dsn_job)
    runner.register(REPORT_JOB, run_report_job)


__all__ = [
    "DSN_JOB",
    "RELAY_ATTEMPTS",
    "RELAY_JOB",
    "REPORT_JOB",
    "Accepted",
    "Gateway",
    "SharedConnectionLimiter",
    "new_message_id",
    "register_follow_ups",
    "register_jobs",
    "start_smtp_servers",
]
