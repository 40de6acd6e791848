"""What operators scrape at ``/metrics`` (Prometheus text format), from every hub process.

``mss serve`` runs prometheus-client in multiprocess mode: each process (the hub,
its SMTP children, the job process) writes its counters to memory-mapped files in
``<data_dir>/metrics`` (emptied at start), and ``/metrics`` on the HTTPS listener
adds them up (``MultiProcessCollector``). Outside ``mss serve`` (a test, a CLI
command) the counters live in this process only.

Labels are a bounded set: a listener name, a protocol, an enhanced status code, a
stage, a job kind. Never an address, a patient or a subject. Counting is one
increment on the path of a message; what the database holds (jobs, portal
sessions) is read at scrape time, in two GROUP BY statements (``mss.health.read_database``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ENV = "PROMETHEUS_MULTIPROC_DIR"
# From a local submission (a few ms) to a large signed message on a busy PostgreSQL.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_STATES = ("pending", "running", "failed")  # "done" grows without bound: mss_jobs_finished_total


class HubMetrics:
    """Every metric a hub process updates; ``hub_metrics()`` is the one in use."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        kw: dict[str, Any] = {"registry": registry}
        self.smtp_accepted = Counter(
            "mss_smtp_messages_accepted",
            "Messages accepted over SMTP (250 after the commit)",
            ["listener"],
            **kw,
        )
        self.smtp_refused = Counter(
            "mss_smtp_refusals",
            "SMTP refusals, by stage (mail, rcpt, data) and enhanced status code",
            ["listener", "stage", "status"],
            **kw,
        )
        self.smtp_delivery_seconds = Histogram(
            "mss_smtp_delivery_seconds",
            "From the end of DATA to the 250 of an accepted message",
            ["listener"],
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.imap_sessions = Gauge(
            "mss_imap_sessions",
            "Open IMAP connections",
            ["listener"],
            multiprocess_mode="livesum",
            **kw,
        )
        self.login_failures = Counter(
            "mss_login_failures",
            "Failed logins (wrong password or code), and those that set a lock",
            ["protocol", "outcome"],
            **kw,
        )
        self.db_connections_in_use = Gauge(
            "mss_db_pool_connections_in_use",
            "Database connections checked out of the pools",
            multiprocess_mode="livesum",
            **kw,
        )
        self.db_pool_capacity = Gauge(
            "mss_db_pool_capacity",
            "Connections the pools may open (pool size plus overflow)",
            multiprocess_mode="livesum",
            **kw,
        )
        self.jobs_finished = Counter(
            "mss_jobs_finished",
            "Jobs that ended, by kind and outcome (done, failed, retry)",
            ["kind", "outcome"],
            **kw,
        )


_state: dict[str, Any] = {"metrics": HubMetrics(CollectorRegistry()), "directory": None}


def hub_metrics() -> HubMetrics:
    """The metrics of this process (multiprocess files under ``mss serve``)."""
    metrics: HubMetrics = _state["metrics"]
    return metrics


def watch_pool(sync_engine: Any) -> None:
    """Count the engine's checked-out connections (``mss_db_pool_connections_in_use``).

    A checkin takes one off the gauge its checkout added to, even when the hub
    switched to multiprocess files in between.
    """
    from sqlalchemy import event

    def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        gauge = hub_metrics().db_connections_in_use
        gauge.inc()
        record.info["mss_in_use"] = gauge

    def checkin(_dbapi: Any, record: Any) -> None:
        gauge = record.info.pop("mss_in_use", None)
        if gauge is not None:
            gauge.dec()

    event.listen(sync_engine, "checkout", checkout)
    event.listen(sync_engine, "checkin", checkin)


def metrics_directory(data_path: Path) -> Path:
    return data_path / "metrics"


def use_multiprocess(directory: Path, *, clean: bool = False) -> None:
    """Write this process's metrics under ``directory``, which ``/metrics`` reads (``clean``: the
    hub, at start).

    prometheus-client picks its value class when it is imported, from the environment;
    here it is picked again, so the hub can switch after an import (``values.ValueClass``
    is what its own tests set).
    """
    if _state["directory"] == directory:
        return
    if clean and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(directory)  # inherited by the spawned children too
    values.ValueClass = values.MultiProcessValue()
    _state.update(metrics=HubMetrics(None), directory=directory)


def use_in_process() -> None:
    """Back to counters in this process only (the hub stopped).

    The files stay mapped: a pool connection checked out meanwhile still takes itself
    off the gauge it was counted on.
    """
    if _state["directory"] is None:
        return
    os.environ.pop(ENV, None)
    values.ValueClass = values.MutexValue
    _state.update(metrics=HubMetrics(CollectorRegistry()), directory=None)


def forget_process(pid: int | None) -> None:
    """A child process exited: its live gauges (open sessions, connections) no longer count."""
    directory = _state["directory"]
    if directory is not None and pid is not None:
        mark_process_dead(pid, str(directory))


@dataclass
class DatabaseSnapshot:
    """What the database holds at scrape time: jobs by kind and state, portal sessions by stage."""

    up: bool = False
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_due: dict[str, float] = field(
        default_factory=dict
    )  # seconds since the earliest due pending job
    portal_sessions: dict[str, int] = field(default_factory=dict)


class DatabaseCollector(Collector):
    """The gauges of one ``DatabaseSnapshot``."""

    def __init__(self, snapshot: DatabaseSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.snapshot
        yield GaugeMetricFamily(
            "mss_database_up", "1 when the database answered this scrape", value=int(s.up)
        )
        jobs = GaugeMetricFamily(
            "mss_jobs", "Jobs not yet done, by kind and state", labels=["kind", "state"]
        )
        for (kind, state), count in sorted(s.jobs.items()):
            jobs.add_metric([kind, state], count)
        yield jobs
        age = GaugeMetricFamily(
            "mss_jobs_oldest_due_seconds",
            "How long the oldest due pending job of each kind has waited",
            labels=["kind"],
        )
        for kind, seconds in sorted(s.oldest_due.items()):
            age.add_metric([kind], seconds)
        yield age
        portal = GaugeMetricFamily(
            "mss_portal_sessions",
            "Portal sessions not idle past the limit, by stage",
            labels=["stage"],
        )
        for stage, count in sorted(s.portal_sessions.items()):
            portal.add_metric([stage], count)
        yield portal


def exposition(snapshot: DatabaseSnapshot) -> bytes:
    """The Prometheus text of every process's metrics and the database's gauges."""
    registry = CollectorRegistry()
    directory = _state["directory"]
    if directory is not None:
        MultiProcessCollector(registry, path=str(directory))
    else:
        registry.register(_Own(hub_metrics()))
    registry.register(DatabaseCollector(snapshot))
    return generate_latest(registry)


class _Own(Collector):
    """This process's registry, when there are no multiprocess files."""

    def __init__(self, metrics: HubMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        assert self.metrics.registry is not None
        yield from self.metrics.registry.collect()
