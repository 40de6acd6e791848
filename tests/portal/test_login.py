"""Two-step login: password then code; back-off, temporary lock, audit of every attempt."""

from __future__ import annotations

import asyncio
from html import unescape

from sqlalchemy import select

from mss.audit import AuditEvent
from mss.directory.models import Patient, PatientState
from portal import totp
from tests.portal.conftest import PASSWORD, Hub, add_patient, second_visitor

INS = "101751234560309"
PHONE = "+33612345678"


async def _try_password(hub: Hub, password: str, identifier: str = INS) -> tuple[int, str]:
    response = await hub.post("/connexion", {"identifiant": identifier, "mot_de_passe": password})
    return response.status, unescape(await response.text())


async def _events(hub: Hub, patient_id: int) -> list[AuditEvent]:
    async with hub.db.read() as session:
        query = (
            select(AuditEvent).where(AuditEvent.patient_id == patient_id).order_by(AuditEvent.id)
        )
        return list((await session.scalars(query)).all())


async def test_login_records_factor_and_source(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    await hub.login(INS)
    response, html = await hub.page("/")
    assert response.status == 200 and "Bonjour Claire" in html
    [event] = await _events(hub, patient.id)
    assert (event.action, event.actor_kind, event.actor) == ("login", "patient", INS)
    assert event.detail["factor"] == "sms" and event.source == "127.0.0.1"


async def test_login_with_personal_email_as_identifier(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire", email="claire.martin@example.org")
    await hub.login("Claire.Martin@example.org")


async def test_sms_text_has_only_the_code(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await _try_password(hub, PASSWORD)
    from mss.notify import read_outbox

    [sms] = read_outbox(hub.settings)
    assert sms["channel"] == "sms" and sms["to"] == PHONE
    assert "Martin" not in sms["text"] and "code de connexion" in sms["text"]


async def test_wrong_password_backoff_then_lock(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    status, html = await _try_password(hub, "wrong")
    assert status == 401 and "Identifiant ou mot de passe incorrect" in html
    assert "Il vous reste 4 essais" in html
    status, html = await _try_password(hub, "wrong")
    assert status == 401 and "attendez 2 secondes" in html
    status, html = await _try_password(hub, PASSWORD)  # even the right password waits
    assert status == 429 and "attendez" in html
    for expected_wait in (4, 8):
        hub.clock.advance(seconds=60)
        status, html = await _try_password(hub, "wrong")
        assert f"attendez {expected_wait} secondes" in html
    hub.clock.advance(seconds=60)
    status, html = await _try_password(hub, "wrong")
    assert "bloquée pendant 15 minutes" in html
    hub.clock.advance(minutes=5)
    status, html = await _try_password(hub, PASSWORD)
    assert status == 429 and "bloquée" in html and "heure de Paris" in html
    hub.clock.advance(minutes=11)
    status, _html = await _try_password(hub, PASSWORD)
    assert status == 303
    failures = [e for e in await _events(hub, patient.id) if e.action == "login_failed"]
    assert len(failures) == 5 and {e.detail["reason"] for e in failures} == {"password"}


async def test_unknown_identifier_answers_like_a_known_one(hub: Hub) -> None:
    status, html = await _try_password(hub, "whatever", identifier="199999999999995")
    assert (
        status == 401
        and "Identifiant ou mot de passe incorrect" in html
        and "Il vous reste 4" in html
    )
    status, html = await _try_password(hub, "whatever", identifier="199999999999995")
    assert "attendez 2 secondes" in html


async def test_wrong_codes_lock_the_account(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    await _try_password(hub, PASSWORD)
    good = hub.last_code(PHONE)
    bad = "000000" if good != "000000" else "111111"
    for _attempt in range(5):
        hub.clock.advance(seconds=20)
        response = await hub.post("/connexion/code", {"code": bad}, csrf_from="/connexion/code")
        html = unescape(await response.text())
        assert response.status == 401 and "Ce code n'est pas le bon" in html
    assert "bloquée pendant 15 minutes" in html
    response = await hub.post("/connexion/code", {"code": good}, csrf_from="/connexion/code")
    assert response.status == 429  # locked: even the right code waits
    reasons = [
        e.detail.get("reason") for e in await _events(hub, patient.id) if e.action == "login_failed"
    ]
    assert reasons == ["code"] * 5


async def test_expired_code_and_resend(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await _try_password(hub, PASSWORD)
    first = hub.last_code(PHONE)
    response = await hub.post("/connexion/code/renvoyer", {}, csrf_from="/connexion/code")
    assert response.status == 429  # too soon
    hub.clock.advance(minutes=6)
    response = await hub.post("/connexion/code", {"code": first}, csrf_from="/connexion/code")
    assert response.status == 400 and "a expiré" in unescape(await response.text())
    response = await hub.post("/connexion/code/renvoyer", {}, csrf_from="/connexion/code")
    assert response.status == 200 and "nouveau code" in await response.text()
    response = await hub.post(
        "/connexion/code", {"code": hub.last_code(PHONE)}, csrf_from="/connexion/code"
    )
    assert response.status == 303


async def test_totp_enrolment_then_login_with_the_app(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    await hub.login(INS)
    response = await hub.post("/securite/totp/commencer", {}, csrf_from="/securite")
    assert response.status == 303
    _response, html = await hub.page("/securite")
    assert "otpauth://totp/" in html
    async with hub.db.read() as session:
        from portal.models import PortalSession

        secret = (
            await session.scalars(
                select(PortalSession.pending_totp_secret).where(
                    PortalSession.patient_id == patient.id
                )
            )
        ).one()
    assert secret is not None and secret.replace(" ", "") in html.replace(" ", "")
    response = await hub.post(
        "/securite/totp",
        {"code": "000000" if totp.totp(secret, hub.clock.now()) != "000000" else "111111"},
        csrf_from="/securite",
    )
    assert response.status == 400
    response = await hub.post(
        "/securite/totp", {"code": totp.totp(secret, hub.clock.now())}, csrf_from="/securite"
    )
    assert response.status == 303
    await hub.post("/deconnexion", {}, csrf_from="/")
    status, _html = await _try_password(hub, PASSWORD)
    assert status == 303
    response, html = await hub.page("/connexion/code")
    assert "application d'authentification" in unescape(html)
    hub.clock.advance(seconds=30)  # the enrolment's code is spent: the app shows the next one
    response = await hub.post("/connexion/code", {"code": totp.totp(secret, hub.clock.now())})
    assert response.status == 303 and response.headers["Location"] == "/"
    logins = [e for e in await _events(hub, patient.id) if e.action == "login"]
    assert [e.detail["factor"] for e in logins] == ["sms", "totp"]


async def test_code_by_email_when_no_phone(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire", phone=None, email="claire@example.org")
    await _try_password(hub, PASSWORD)
    _response, html = await hub.page("/connexion/code")
    assert "par e-mail à c•••@example.org" in html
    await hub.post("/connexion/code", {"code": hub.last_code("claire@example.org")})
    response, _html = await hub.page("/")
    assert response.status == 200


async def test_closed_and_opposed_accounts_cannot_sign_in(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire", state=PatientState.CLOSED)
    status, html = await _try_password(hub, PASSWORD)
    assert status == 403 and "clôturé" in html
    status, html = await _try_password(hub, "wrong")
    assert status == 401  # the state is told only to whoever knows the password


async def test_a_session_of_a_closed_account_ends(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    await hub.login(INS)
    async with hub.db.write() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.state = PatientState.CLOSED
    response, _html = await hub.page("/")
    assert response.status == 303 and response.headers["Location"] == "/connexion"


async def test_stay_signed_in_goes_back_only_to_a_portal_page(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await hub.login(INS)
    for hostile in (
        "/\\evil.example/",
        "/\\\\evil.example/",
        "/\t/evil.example/",
        "/\n/evil.example",
        "//evil.example/",
        "/%5Cevil.example/",
        "/%5cevil.example",
        "/%2F/evil.example",
        "/%09/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example",
        " /messages",
        "/messages\r\nSet-Cookie: x=1",
        "/pas-une-page",
        "/static/portal.css",
        "",
    ):
        response = await hub.post("/session/prolonger", {"suite": hostile}, csrf_from="/")
        assert response.status == 303, hostile
        assert response.headers["Location"] == "/", (
            f"{hostile!r} -> {response.headers['Location']!r}"
        )
    for page in ("/messages", "/historique?type=compte", "/compte"):
        response = await hub.post("/session/prolonger", {"suite": page}, csrf_from="/")
        assert response.headers["Location"] == page


async def test_an_app_code_works_once(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    secret = totp.new_secret()
    async with hub.db.write() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.totp_secret = secret
    code = totp.totp(secret, hub.clock.now())
    await _try_password(hub, PASSWORD)
    response = await hub.post("/connexion/code", {"code": code}, csrf_from="/connexion/code")
    assert response.status == 303 and response.headers["Location"] == "/"
    await hub.post("/deconnexion", {}, csrf_from="/")
    hub.clock.advance(seconds=20)  # still inside the code's window (one step of drift is allowed)
    status, _html = await _try_password(hub, PASSWORD)
    assert status == 303
    response = await hub.post("/connexion/code", {"code": code}, csrf_from="/connexion/code")
    html = unescape(await response.text())
    assert response.status == 401 and "Ce code a déjà servi" in html
    response, _html = await hub.page("/")
    assert response.status == 303  # not signed in
    hub.clock.advance(seconds=30)
    response = await hub.post(
        "/connexion/code", {"code": totp.totp(secret, hub.clock.now())}, csrf_from="/connexion/code"
    )
    assert response.status == 303 and response.headers["Location"] == "/"
    reasons = [
        e.detail.get("reason") for e in await _events(hub, patient.id) if e.action == "login_failed"
    ]
    assert reasons == ["code_reused"]


async def test_a_sent_code_signs_in_one_browser_only(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await _try_password(hub, PASSWORD)
    code, token = hub.last_code(PHONE), await hub.csrf("/connexion/code")
    cookies = {c.key: c.value for c in hub.client.session.cookie_jar}
    twin = await second_visitor(hub)  # the same half-signed-in cookie, replayed by someone else
    twin.client.session.cookie_jar.update_cookies(cookies, hub.client.make_url("/"))
    responses = await asyncio.gather(
        *(
            visitor.client.post(
                "/connexion/code", data={"csrf": token, "code": code}, allow_redirects=False
            )
            for visitor in (hub, twin)
        )
    )
    signed_in = [r for r in responses if r.status == 303 and r.headers["Location"] == "/"]
    assert len(signed_in) == 1, [(r.status, r.headers.get("Location")) for r in responses]
