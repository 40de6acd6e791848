"""A reading is in the access history as soon as the page is answered: the hub killed (SIGKILL)
the moment the page arrives loses no audit line.

The reading of a message already \\Seen goes through the audit writer (group commit,
``mss.audit.record_committed``), which answers only after its transaction committed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from sqlalchemy import select

from mss.audit import AuditEvent, audit_writer
from portal.sessions import COOKIE
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, patient_address, setup_mail

ROOT = Path(__file__).resolve().parents[2]
INS = "201751234561148"
PATIENT = patient_address(INS)


async def _readings(hub: Hub, stored_id: int) -> int:
    async with hub.db.read() as session:
        found = await session.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.action == "message_read", AuditEvent.actor == INS
            )
        )
        return sum(1 for detail in found if detail.get("stored_message_id") == stored_id)


def _start_portal(hub: Hub, tls_files: tuple[Path, Path]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.portal.portal_process",
            hub.settings.data_dir,
            hub.settings.database_url,
            *map(str, tls_files),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise AssertionError(f"the portal process did not start: {line!r}")
    return process, int(line)


async def test_a_reading_survives_the_hub_killed_right_after_the_page(
    hub: Hub, dev_pki: DevPki, tls_files: tuple[Path, Path]
) -> None:
    await add_patient(hub.db, INS, "Roux", "Alice")
    mail = await setup_mail(hub, dev_pki)
    message_id = await mail.send(DOCTOR, PATIENT, "Résultats")
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, message_id)
    (stored_id,) = [m.id for m in await mail.stored(PATIENT) if m.message_id_header == message_id]
    response, _html = await hub.page(f"/messages/{entry}")  # the first reading sets \Seen
    assert response.status == 200 and await _readings(hub, stored_id) == 1
    token = hub.client.session.cookie_jar.filter_cookies(hub.client.make_url("/"))[COOKIE].value

    process, port = _start_portal(hub, tls_files)
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False), cookies={COOKIE: token}
            ) as http,
            http.get(f"https://127.0.0.1:{port}/messages/{entry}", allow_redirects=False) as page,
        ):
            status = page.status
            os.kill(process.pid, signal.SIGKILL)  # before the body is even read
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert status == 200
    assert process.returncode == -signal.SIGKILL
    assert await _readings(hub, stored_id) == 2


async def test_readings_at_the_same_moment_share_one_audit_transaction(
    hub: Hub, dev_pki: DevPki
) -> None:
    await add_patient(hub.db, INS, "Roux", "Alice")
    mail = await setup_mail(hub, dev_pki)
    message_id = await mail.send(DOCTOR, PATIENT, "Résultats")
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, message_id)
    (stored_id,) = [m.id for m in await mail.stored(PATIENT) if m.message_id_header == message_id]
    await hub.page(f"/messages/{entry}")  # sets \Seen: later readings write the audit line only
    writer = audit_writer(hub.db)
    batches, requests = writer.stats.batches, writer.stats.requests
    pages = await asyncio.gather(*(hub.page(f"/messages/{entry}") for _ in range(12)))
    assert all(response.status == 200 for response, _html in pages)
    assert writer.stats.requests - requests == 12
    assert writer.stats.batches - batches < 12  # some readings shared a transaction
    assert await _readings(hub, stored_id) == 13  # and none was lost
