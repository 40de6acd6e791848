"""The portal's password step under the one login throttle (pen test finding 12).

Knowing a patient's INS used to be enough to lock the patient out of the
portal for 15 minutes. Now the lock holds only for the address that made the
failures; from another address (a second client bound to 127.0.0.2) the
patient waits at most the account's back-off, then logs in. The patient is
told by notification when a lock begins, without any medical content.
"""

from __future__ import annotations

from html import unescape

import aiohttp
from aiohttp.test_utils import TestClient

from mss.jobs import JobRunner
from mss.notify import read_outbox, register_jobs
from mss.services import Services
from tests.portal.conftest import PASSWORD, Hub, add_patient

INS = "101751234560309"
PHONE = "+33612345678"
EMAIL = "claire.martin@example.org"
LOCKED = "la connexion à ce compte depuis votre adresse est bloquée pendant 15 minutes"


async def _try_password(hub: Hub, password: str) -> tuple[int, str]:
    response = await hub.post("/connexion", {"identifiant": INS, "mot_de_passe": password})
    return response.status, unescape(await response.text())


async def _from_another_address(hub: Hub) -> Hub:
    """A second browser, its connections made from 127.0.0.2."""
    client = TestClient(
        hub.client.server,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        connector=aiohttp.TCPConnector(ssl=False, local_addr=("127.0.0.2", 0)),
    )
    await client.start_server()
    return Hub(client, hub.clock, hub.settings, hub.db)


async def _send_notifications(hub: Hub) -> None:
    runner = JobRunner(hub.db, services=Services(hub.settings))
    register_jobs(runner)
    await runner.drain()


async def test_twenty_wrong_passwords_then_the_right_one_is_refused_with_the_lock(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    await add_patient(hub.db, INS, "Martin", "Claire")
    answers = [await _try_password(hub, f"essai {n}") for n in range(20)]
    assert [status for status, _ in answers[:5]] == [401] * 5
    assert LOCKED in answers[4][1]
    assert all(status == 429 and LOCKED in html for status, html in answers[5:])
    status, html = await _try_password(hub, PASSWORD)
    assert status == 429 and LOCKED in html and "heure de Paris" in html


async def test_a_lock_from_one_address_only_delays_the_patient_from_another(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    for _ in range(5):
        hub.clock.advance(seconds=60)  # past each back-off: the attacker is patient
        status, html = await _try_password(hub, "devine")
    assert status == 401 and LOCKED in html
    patient = await _from_another_address(hub)
    try:
        status, html = await _try_password(patient, PASSWORD)
        # The account's back-off after 5 failures (16 s), never more than max_back_off_seconds (60
        # s).
        assert status == 429 and "attendez 16 secondes" in html and "bloquée" not in html
        hub.clock.advance(seconds=16)
        await patient.login(INS)
        response, html = await patient.page("/")
        assert response.status == 200 and "Bonjour Claire" in html
    finally:
        await patient.client.session.close()  # not the client: it would stop the shared server
    status, html = await _try_password(hub, PASSWORD)
    assert status == 429 and LOCKED in html  # still locked where the failures came from


async def test_the_patient_is_notified_when_a_lock_begins(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    await add_patient(hub.db, INS, "Martin", "Claire", email=EMAIL)
    for n in range(20):
        await _try_password(hub, f"essai {n}")
    await _send_notifications(hub)
    notices = [r for r in read_outbox(hub.settings) if r["to"] in (EMAIL, PHONE)]
    assert sorted(r["channel"] for r in notices) == [
        "email",
        "sms",
    ]  # one lock, one notice per channel
    [mail] = [r for r in notices if r["channel"] == "email"]
    assert mail["subject"] == "Connexion à votre espace santé bloquée"
    assert (
        "bloquée temporairement depuis l'appareil" in mail["text"] and "/connexion" in mail["text"]
    )
    assert "aucune information médicale" in mail["text"] and INS not in mail["text"]


async def test_a_wrong_identifier_locks_nobody_and_notifies_nobody(hub: Hub) -> None:
    hub.settings.login_throttle.back_off_seconds = 0
    for n in range(6):
        response = await hub.post(
            "/connexion", {"identifiant": "199999999999995", "mot_de_passe": f"x{n}"}
        )
    assert response.status == 429 and LOCKED in unescape(await response.text())
    await _send_notifications(hub)
    assert read_outbox(hub.settings) == []
