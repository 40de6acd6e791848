"""Idle logout (server side), the warning's settings on the page, keep-alive and logout."""

from __future__ import annotations

from sqlalchemy import select

from mss.audit import AuditEvent
from tests.portal.conftest import Hub, add_patient

INS = "101751234560408"


async def test_idle_session_ends_and_says_why(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Bernard", "Paul")
    await hub.login(INS)
    hub.clock.advance(minutes=14)
    response, html = await hub.page("/historique")
    assert response.status == 200  # activity: the 15 minutes start again
    assert 'data-idle-seconds="900"' in html and 'data-warn-seconds="840"' in html
    hub.clock.advance(minutes=15, seconds=30)
    response, _html = await hub.page("/")
    assert response.status == 303 and response.headers["Location"] == "/connexion?motif=inactivite"
    response, html = await hub.page("/connexion?motif=inactivite")
    assert "période sans activité" in html
    async with hub.db.read() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.patient_id == patient.id)
            )
        ).all()
    assert list(actions) == ["login", "session_expired"]


async def test_idle_post_goes_to_login_not_to_an_error(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Bernard", "Paul")
    await hub.login(INS)
    token = await hub.csrf("/compte/desactiver")
    hub.clock.advance(minutes=16)
    response = await hub.client.post(
        "/compte/desactiver", data={"csrf": token}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/connexion?motif=inactivite"


async def test_keep_alive_and_expired_page(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Bernard", "Paul")
    await hub.login(INS)
    hub.clock.advance(minutes=14, seconds=10)
    response = await hub.post("/session/prolonger", {"suite": "/historique"}, csrf_from="/compte")
    assert response.status == 303 and response.headers["Location"] == "/historique"
    hub.clock.advance(minutes=14)
    response, _html = await hub.page("/session/expiree")
    assert response.status == 303 and response.headers["Location"] == "/"  # still alive: back home
    hub.clock.advance(minutes=16)
    response, html = await hub.page("/session/expiree")
    assert response.status == 200 and "Session terminée" in html


async def test_keep_alive_never_redirects_off_site(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Bernard", "Paul")
    await hub.login(INS)
    response = await hub.post("/session/prolonger", {"suite": "//evil.example/"}, csrf_from="/")
    assert response.headers["Location"] == "/"


async def test_configured_idle_minutes(hub: Hub) -> None:
    hub.settings.portal.session_idle_minutes = 1
    await add_patient(hub.db, INS, "Bernard", "Paul")
    await hub.login(INS)
    response, html = await hub.page("/")
    assert 'data-idle-seconds="60"' in html and 'data-warn-seconds="30"' in html
    hub.clock.advance(seconds=61)
    response, _html = await hub.page("/")
    assert response.status == 303


async def test_logout(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Bernard", "Paul")
    await hub.login(INS)
    response = await hub.post("/deconnexion", {}, csrf_from="/")
    assert response.status == 303 and response.headers["Location"] == "/connexion?motif=deconnexion"
    response, _html = await hub.page("/")
    assert response.status == 303 and response.headers["Location"] == "/connexion"
