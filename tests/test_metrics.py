"""What operators scrape and probe: ``/metrics``, ``/healthz``, ``/readyz``, and the JSON logs.

The hub runs as ``mss serve`` does (``mss.serve.Hub``: SMTP, IMAP and HTTPS on free
ports), on the test's database (SQLite and PostgreSQL); a real SMTP client delivers
and is refused, a real HTTPS client scrapes. With ``smtp_processes = 2`` a message
the child process takes is counted in the one endpoint of the hub.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import aiosmtplib
import pytest
from sqlalchemy import text

from mss.config import Settings
from mss.db import Database, utcnow
from mss.health import code_head
from mss.jobs import enqueue
from mss.log_format import configure_logging
from mss.serve import Hub as ServeHub
from portal import sessions
from tests.smtp import conftest as smtp_fixtures
from tests.smtp.conftest import DOCTOR, PASSWORD, PATIENT, Hub, message, signed
from tests.smtp.test_processes import limiter_of

hub = smtp_fixtures.hub  # the SMTP tests' directory and PKI, on this test's database
INS = PATIENT.split("@")[0]


async def serve(hub: Hub, *, processes: int = 1, allow: list[str] | None = None) -> ServeHub:
    """``mss serve`` on the test's database and PKI: SMTP, IMAP (STARTTLS port) and HTTPS on free
    ports."""
    settings = copy.deepcopy(hub.settings)
    settings.listeners.imaps = False
    for name in ("submission", "submission_tls", "smtp_relay", "imap", "https"):
        setattr(settings.ports, name, 0)
    settings.listeners.smtp_processes = processes
    settings.limits.max_connections_per_ip = (
        100  # connect_into_child may open 40 to reach the child
    )
    if allow is not None:
        settings.metrics.allow = allow
    served = ServeHub(settings, Database(settings.effective_database_url))
    await served.start()
    return served


def smtp_client(hub: Hub, served: ServeHub) -> Hub:
    """The SMTP helpers of the test hub, pointed at the ports ``served`` bound."""
    return dataclasses.replace(hub, ports=served.services.smtp_ports)


async def get(
    hub: Hub,
    served: ServeHub,
    path: str,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[int, Mapping[str, str], str]:
    """One HTTPS request from ``source`` (a loopback address) to the hub: status, headers, body."""
    connector = aiohttp.TCPConnector(ssl=hub.client_tls(), local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as client,
        client.get(
            f"https://127.0.0.1:{served.bound['https']}{path}",
            server_hostname="localhost",
            headers=headers or {},
        ) as response,
    ):
        return (
            response.status,
            response.headers.copy(),
            await response.text(),
        )  # names case-insensitive


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text, found by name and exact labels."""
    for line in exposition.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-z_]+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


async def connect_into_child(served: ServeHub, hub: Hub) -> aiosmtplib.SMTP:
    """A logged-in client whose connection the child took (once it listens: it starts after the
    hub)."""
    limiter, client = limiter_of(served), smtp_client(hub, served)
    async with asyncio.timeout(60):
        while True:
            before = limiter.open_in(1)
            smtp = await client.login_client(DOCTOR)
            if limiter.open_in(1) > before:
                return smtp
            await smtp.quit()
            await asyncio.sleep(0.05)


async def test_deliveries_refusals_sessions_and_login_failures_are_counted(hub: Hub) -> None:
    served = await serve(hub)
    try:
        client = smtp_client(hub, served)
        identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
        smtp = await client.login_client(DOCTOR)
        await smtp.sendmail(DOCTOR, [PATIENT], signed(identity, DOCTOR, PATIENT))
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await smtp.sendmail(
                DOCTOR, ["nobody@mss.localhost"], message(DOCTOR, "nobody@mss.localhost")
            )
        with pytest.raises(aiosmtplib.SMTPDataError):  # to a patient, unsigned: refused at DATA
            await smtp.sendmail(DOCTOR, [PATIENT], message(DOCTOR, PATIENT))
        await smtp.quit()
        wrong = client.client("submission")
        await wrong.connect()
        await wrong.starttls()
        await wrong.ehlo()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await wrong.auth_plain(
                DOCTOR, PASSWORD + "?"
            )  # one attempt (login() tries each mechanism)
        await wrong.quit()
        _reader, imap = await asyncio.open_connection("127.0.0.1", served.bound["imap"])
        assert (await _reader.readline()).startswith(b"* OK")
        async with served.db.write() as session:
            enqueue(session, "metrics.test", {}, run_after=utcnow() - dt.timedelta(minutes=5))
        await sessions.start_anonymous(served.db, utcnow(), "127.0.0.1")

        status, headers, body = await get(hub, served, "/metrics")
        imap.close()
    finally:
        await served.stop()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert sample(body, "mss_smtp_messages_accepted_total", listener="submission") == 1
    assert sample(body, "mss_smtp_delivery_seconds_count", listener="submission") == 1
    assert sample(body, "mss_smtp_delivery_seconds_bucket", listener="submission", le="+Inf") == 1
    assert (
        sample(body, "mss_smtp_refusals_total", listener="submission", stage="rcpt", status="5.1.1")
        == 1
    )
    data_refusals = [
        line
        for line in body.splitlines()
        if line.startswith('mss_smtp_refusals_total{listener="submission",stage="data"')
    ]
    assert len(data_refusals) == 1 and data_refusals[0].endswith(" 1.0"), data_refusals
    assert sample(body, "mss_login_failures_total", protocol="smtp", outcome="refused") == 1
    assert sample(body, "mss_imap_sessions", listener="imap") == 1
    assert sample(body, "mss_jobs", kind="metrics.test", state="pending") == 1
    oldest = sample(body, "mss_jobs_oldest_due_seconds", kind="metrics.test")
    assert oldest is not None and 300 <= oldest < 3600
    assert sample(body, "mss_portal_sessions", stage="anonymous") == 1
    assert sample(body, "mss_database_up") == 1
    capacity = sample(body, "mss_db_pool_capacity")
    assert capacity is not None and capacity > 0
    assert sample(body, "mss_db_pool_connections_in_use") is not None
    assert INS not in body and "@" not in body  # labels are names and codes, never an address


async def test_a_message_the_child_process_takes_is_in_the_hubs_metrics(hub: Hub) -> None:
    served = await serve(hub, processes=2)
    try:
        smtp = await connect_into_child(served, hub)
        _, _, before = await get(hub, served, "/metrics")
        identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
        await smtp.sendmail(DOCTOR, [PATIENT], signed(identity, DOCTOR, PATIENT))
        await smtp.quit()
        _, _, after = await get(hub, served, "/metrics")
    finally:
        await served.stop()
    assert sample(before, "mss_smtp_messages_accepted_total", listener="submission") is None
    assert sample(after, "mss_smtp_messages_accepted_total", listener="submission") == 1
    assert sample(after, "mss_smtp_delivery_seconds_count", listener="submission") == 1
    capacity = sample(after, "mss_db_pool_capacity")
    assert (
        capacity is not None and capacity == 2 * served.db.pool_capacity
    )  # the hub's pool and the child's


async def test_healthz_and_readyz(hub: Hub) -> None:
    served = await serve(hub)
    try:
        health = await get(hub, served, "/healthz")
        ready = await get(hub, served, "/readyz")
        async with served.db.write() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = '0000'"))
        behind = await get(hub, served, "/readyz")
        async with served.db.write() as session:
            await session.execute(text("DROP TABLE alembic_version"))
        empty = await get(hub, served, "/readyz")
        alive = await get(hub, served, "/healthz")
    finally:
        await served.stop()
    assert health[0] == 200 and json.loads(health[2]) == {"status": "ok"}
    assert ready[0] == 200
    assert json.loads(ready[2]) == {
        "status": "ok",
        "database": "ok",
        "migrations": "current",
        "revision": code_head(),
    }
    assert behind[0] == 503
    body = json.loads(behind[2])
    assert (
        body["migrations"] == "behind"
        and body["revision"] == "0000"
        and body["expected_revision"] == code_head()
    )
    assert "mss db upgrade" in body["detail"]
    assert empty[0] == 503
    body = json.loads(empty[2])
    assert (
        body["migrations"] == "behind"
        and body["revision"] is None
        and "no schema" in body["detail"]
    )
    assert alive[0] == 200


async def test_readyz_is_503_when_the_database_does_not_answer(
    settings: Settings, dev_pki: Any
) -> None:
    from aiohttp import web

    from mss.http import build_app

    dev_pki.install(settings)
    unreachable = Database("postgresql+asyncpg://mss@127.0.0.1:1/nowhere")
    runner = web.AppRunner(build_app(settings, unreachable))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            status, body = response.status, await response.json()
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            alive = response.status
    finally:
        await runner.cleanup()
        await unreachable.dispose()
    assert status == 503 and body["database"] == "unavailable" and body["status"] == "unavailable"
    assert alive == 200


async def test_metrics_refuse_an_address_not_allowed(hub: Hub) -> None:
    served = await serve(hub, allow=["127.0.0.1/32"])
    try:
        allowed = await get(hub, served, "/metrics", source="127.0.0.1")
        other = await get(hub, served, "/metrics", source="127.0.0.2")
        served.settings.metrics.allow = []
    finally:
        await served.stop()
    assert allowed[0] == 200 and "mss_database_up 1.0" in allowed[2]
    assert other[0] == 403 and "mss_" not in other[2]
    assert "[metrics] allow" in json.loads(other[2])["detail"]


async def test_metrics_allow_none(hub: Hub) -> None:
    served = await serve(hub, allow=[])
    try:
        refused = await get(hub, served, "/metrics")
        health = await get(hub, served, "/healthz")
    finally:
        await served.stop()
    assert refused[0] == 403
    assert health[0] == 200  # the probes stay open: they say nothing but "up"


@pytest.fixture
def json_log(settings: Settings) -> Iterator[io.StringIO]:
    """The hub's logging as ``mss serve`` sets it up, in JSON at INFO, into a buffer."""
    root, quiet = logging.getLogger(), logging.getLogger("mail.log")
    levels = (root.level, quiet.level)
    settings.log_format, settings.log_level = "json", "INFO"
    buffer = io.StringIO()
    handler = configure_logging(settings, buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        quiet.setLevel(levels[1])


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_json_log_lines_carry_the_request_id(hub: Hub, json_log: io.StringIO) -> None:
    served = await serve(hub)
    try:
        _, ours, _ = await get(hub, served, "/healthz")
        _, theirs, _ = await get(hub, served, "/readyz", headers={"X-Request-Id": "proxy-7f3a9c01"})
        _, refused, _ = await get(hub, served, "/healthz", headers={"X-Request-Id": "bad\tid"})
    finally:
        await served.stop()
    entries = log_lines(json_log)
    assert entries and all(
        {"time", "level", "logger", "message"} <= entry.keys() for entry in entries
    )
    by_request = {
        entry.get("request_id"): entry for entry in entries if entry["logger"] == "mss.http.access"
    }
    assert re.fullmatch(r"[0-9a-f]{16}", ours["X-Request-Id"])
    assert by_request[ours["X-Request-Id"]]["message"].startswith("GET /healthz 200 ")
    assert theirs["X-Request-Id"] == "proxy-7f3a9c01"
    assert by_request["proxy-7f3a9c01"]["message"].startswith("GET /readyz 200 ")
    assert re.fullmatch(r"[0-9a-f]{16}", refused["X-Request-Id"])  # not a token: a new id


async def test_a_delivery_to_a_patient_logs_no_ins_and_no_subject(
    hub: Hub, json_log: io.StringIO
) -> None:
    """At INFO, in JSON: the session's lines carry its id, never the patient's INS nor the
    subject."""
    subject = "Biopsie hépatique : résultats"
    identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
    smtp = await hub.login_client(DOCTOR)
    await smtp.sendmail(DOCTOR, [PATIENT], signed(identity, DOCTOR, PATIENT, subject=subject))
    with pytest.raises(aiosmtplib.SMTPDataError):  # unsigned to a patient: the refusal is logged
        await smtp.sendmail(DOCTOR, [PATIENT], message(DOCTOR, PATIENT, subject=subject))
    await smtp.quit()
    text_logged = json_log.getvalue()
    entries = log_lines(json_log)
    refusals = [entry for entry in entries if entry["message"].startswith("refused ")]
    assert len(refusals) == 1 and "[INS]@patient.mss.localhost" in refusals[0]["message"]
    assert re.fullmatch(r"[0-9a-f]{16}", refusals[0]["session_id"])
    assert INS not in text_logged
    assert "Biopsie" not in text_logged and "résultats" not in text_logged


@pytest.fixture(autouse=True)
async def _no_leftover_hub() -> AsyncIterator[None]:
    yield
    from mss import metrics

    # a failed start must not leave this process writing to a test's folder
    metrics.use_in_process()
