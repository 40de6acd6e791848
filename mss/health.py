"""What operators and their monitoring read over HTTPS: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` is 200 while the process serves (liveness). ``/readyz`` is 200 when
the database answers ``SELECT 1`` and its schema is at the code's Alembic head,
else 503 with a JSON body saying which. ``/metrics`` is the Prometheus text of
every hub process (``mss.metrics``), for the addresses in ``[metrics] allow`` only
(``mss.policy.operations``): 403 for any other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from mss import metrics
from mss.db import Database, utcnow, within
from mss.errors import DatabaseUnavailable
from mss.jobs import Job
from mss.policy.operations import decide_metrics_access, parse_networks
from mss.web import DB, SETTINGS
from portal.models import PortalSession

PROBE_SECONDS = 5.0  # a probe waits no longer than a monitoring system does
# [metrics] allow, parsed once
ALLOWED: web.AppKey[tuple[IPv4Network | IPv6Network, ...]] = web.AppKey("metrics_allowed")


@functools.cache
def code_head() -> str | None:
    """The newest migration this code ships (Alembic's head revision)."""
    from alembic.script import ScriptDirectory

    from mss.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def schema_revision(db: Database) -> str | None:
    """The revision the database's ``alembic_version`` table records (None: no schema)."""
    async with db.read() as session:
        await session.execute(text("SELECT 1"))
        try:
            return (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except DBAPIError as exc:  # no such table: an empty database
            if exc.connection_invalidated:
                raise DatabaseUnavailable(f"the database went away: {exc.orig}") from None
            return None


async def readiness(db: Database) -> tuple[bool, dict[str, Any]]:
    """Ready or not, and the body that says why."""
    head = code_head()
    try:
        revision = await within(PROBE_SECONDS, schema_revision(db))
    except (DatabaseUnavailable, OSError) as exc:
        return False, {
            "status": "unavailable",
            "database": "unavailable",
            "detail": str(exc),
            "expected_revision": head,
        }
    if revision != head:
        detail = (
            "the database has no schema: run 'mss db upgrade'"
            if revision is None
            else f"the schema is at revision {revision}, the code expects {head}: run 'mss "
            f"db upgrade'"
        )
        return False, {
            "status": "unavailable",
            "database": "ok",
            "migrations": "behind",
            "revision": revision,
            "expected_revision": head,
            "detail": detail,
        }
    return True, {"status": "ok", "database": "ok", "migrations": "current", "revision": revision}


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready, body = await readiness(request.app[DB])
    return web.json_response(body, status=200 if ready else 503)


async def read_database(
    db: Any, now: dt.datetime, portal_idle: dt.timedelta
) -> metrics.DatabaseSnapshot:
    """The database's gauges for ``/metrics``, in two statements: jobs grouped by kind and
    state (not done), live portal sessions by stage."""
    snapshot = metrics.DatabaseSnapshot()
    async with db.read() as session:
        rows = (
            await session.execute(
                select(Job.kind, Job.state, func.count(), func.min(Job.run_after))
                .where(Job.state.in_(metrics.JOB_STATES))
                .group_by(Job.kind, Job.state)
            )
        ).all()
        stages = (
            await session.execute(
                select(PortalSession.stage, func.count())
                .where(PortalSession.last_seen_at >= now - portal_idle)
                .group_by(PortalSession.stage)
            )
        ).all()
    for kind, state, count, earliest in rows:
        snapshot.jobs[(kind, state)] = count
        if state == "pending" and earliest is not None:
            snapshot.oldest_due[kind] = max(0.0, (now - earliest).total_seconds())
    snapshot.portal_sessions = {stage: count for stage, count in stages}
    snapshot.up = True
    return snapshot


async def scrape(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    allowed = request.app[ALLOWED]
    access = decide_metrics_access(request.remote, allowed)
    if not access:
        return web.json_response(
            {"status": access.status, "detail": access.sentence}, status=access.status
        )
    idle = dt.timedelta(minutes=settings.portal.session_idle_minutes)
    try:
        snapshot = await within(PROBE_SECONDS, read_database(request.app[DB], utcnow(), idle))
    except (DatabaseUnavailable, OSError):
        snapshot = metrics.DatabaseSnapshot()
    body = await asyncio.to_thread(metrics.exposition, snapshot)  # reads every process's files
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


def setup(app: web.Application) -> None:
    app[ALLOWED] = parse_networks(app[SETTINGS].metrics.allow)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", scrape)
