"""The SMTP gateway: submission and operator relay listeners, and the one path every message takes.

Public API: ``start_smtp_servers`` (for ``mss serve``), ``register_jobs``
(relay and DSN job kinds), and ``Gateway`` (the stages the portal reuses).
"""

from __future__ import annotations

from mss.jobs import JobRunner
from mss.smtp_gateway.bounces import run_dsn_job
from mss.smtp_gateway.delivery import DSN_JOB, RELAY_JOB
from mss.smtp_gateway.relay import run_relay_job
from mss.smtp_gateway.server import start_smtp_servers
from mss.smtp_gateway.stages import Gateway


def register_jobs(runner: JobRunner) -> None:
    """Register the gateway's job kinds: outbound relay and delivery status notifications."""
    runner.register(RELAY_JOB, run_relay_job)
    runner.register(DSN_JOB, run_dsn_job)


__all__ = ["DSN_JOB", "RELAY_JOB", "Gateway", "register_jobs", "start_smtp_servers"]
