"""Connecting a catalogue service over real HTTPS: OAuth 2.0 code + PKCE S256 (RFC 6749, 7636),
the consent page, tokens bound to the space, refresh rotation, revocation, precise errors."""

from __future__ import annotations

import urllib.parse

import aiohttp
from sqlalchemy import select

from mss.catalogue.models import ServiceCode, ServiceToken
from mss.catalogue.store import token_hash
from portal.history import read_history
from tests.portal.conftest import Hub, add_guardianship, add_patient
from tests.portal.service_flow import (
    REDIRECT,
    answer,
    back_link,
    client_of,
    connect,
    local,
    query_of,
    register,
)

INS = "285037505612306"
CHILD_INS = "215086912304696"
GUARDIAN_INS = "179066912304583"


async def _claire(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Martin", "Claire")
    await hub.login(INS)


async def test_whole_flow_measure_shown_code_once_refresh_rotated(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    url = log.authorization_url()
    response, page = await hub.page(local(url))
    assert response.status == 200
    assert "Carnet de poids" in page and "Association Démo Santé" in page
    assert "Enregistrer des mesures" in page
    assert "Lire vos documents : Résultats d&#39;analyses biologiques" in page
    status, page = await answer(hub, url, ["measurements:write"])  # one of the two ticked
    assert status == 200 and "est connecté à votre espace" in page
    back = back_link(page)
    assert back.startswith(REDIRECT + "?")
    returned = query_of(back)
    tokens = (await log.exchange(returned["code"], returned["state"]))[1]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 600
    assert tokens["scope"] == "measurements:write" and tokens["patient"] == INS
    async with hub.db.read() as session:  # only hashes are kept
        rows = (await session.scalars(select(ServiceToken))).all()
        assert [r.access_hash for r in rows] == [token_hash(tokens["access_token"])]
        assert (await session.scalars(select(ServiceCode))).one().code_hash == token_hash(
            returned["code"]
        )

    status, body = await log.post_weight(72.5)
    assert status == 201, body
    assert body["resourceType"] == "Observation" and body["valueQuantity"]["value"] == 72.5
    _r, profile = await hub.page("/profil")
    assert "Poids : 72,5 kg" in profile and "par Carnet de poids" in profile

    # The code works once; presented again it is invalid_grant and its tokens are revoked.
    log.pending[returned["state"]] = "x" * 43
    again = await log.exchange(returned["code"], returned["state"])
    assert again[0] == 400 and again[1]["error"] == "invalid_grant"
    assert (await log.post_weight(70))[0] == 401


async def test_refresh_rotates_and_the_old_refresh_token_is_spent(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    first = await connect(hub, log)
    status, second = await log.refresh()
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == first["scope"] and second["patient"] == INS
    assert (await log.post_weight(71.2))[0] == 201
    log.tokens = first  # the old refresh token, rotated away
    status, body = await log.refresh()
    assert (status, body["error"]) == (400, "invalid_grant")
    # Narrowing on refresh is allowed (RFC 6749 §6), widening is invalid_scope.
    log.tokens = second
    status, body = await log._post_form(
        {
            "grant_type": "refresh_token",
            "refresh_token": second["refresh_token"],
            "client_id": "carnet",
            "scope": "documents:11488-4",
        }
    )
    assert (status, body["error"]) == (400, "invalid_scope")


async def test_revoked_in_one_click_then_401_and_history(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    await connect(hub, log)
    _r, page = await hub.page("/services")
    assert "Services connectés" in page and "Déconnecter Carnet de poids" in page
    async with hub.db.read() as session:
        from mss.catalogue.store import connections_of
        from mss.directory.store import find_patient_by_ins

        patient = await find_patient_by_ins(session, INS)
        assert patient is not None
        (connected,) = await connections_of(session, patient.id)
    response = await hub.post(
        f"/services/connexions/{connected.connection.id}/deconnecter", {}, csrf_from="/services"
    )
    assert response.status == 303 and response.headers["Location"] == "/services?fait=deconnecte"
    _r, page = await hub.page("/services?fait=deconnecte")
    assert "Aucun service n'est connecté" in page
    status, body = await log.post_weight(70)
    assert status == 401 and "revoked" in body["issue"][0]["diagnostics"]
    status, body = await log.refresh()
    assert (status, body["error"]) == (400, "invalid_grant")
    # Another space's connection cannot be revoked from here, nor a missing one.
    missing = await hub.post("/services/connexions/999999/deconnecter", {}, "/services")
    assert missing.status == 404
    async with hub.db.read() as session:
        lines = await read_history(session, patient.id)
        kind = await read_history(session, patient.id, kind="services")
    assert [line.what for line in kind] == [
        "Service déconnecté de l'espace",
        "Service connecté à l'espace",
    ]  # the history's "Services connectés" filter
    said = [(line.what, line.who, line.detail) for line in lines]
    assert (
        "Service déconnecté de l'espace",
        "Claire Martin (vous-même)",
        "Carnet de poids",
    ) in said
    assert ("Service connecté à l'espace", "Claire Martin (vous-même)", "Carnet de poids") in said
    assert not any(line.what.startswith("Mesure") for line in lines)  # none was accepted


async def test_bearer_answers_carry_the_rfc_6750_challenge(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    log.tokens = {"access_token": "not-a-token", "patient": INS}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as client,
        client.post(
            log.hub + "/fhir/Observation",
            json={},
            headers={"Authorization": "Bearer not-a-token"},
        ) as response,
    ):
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith(
            'Bearer realm="MSS DMP", error="invalid_token"'
        )
        assert (await response.json(content_type=None))["resourceType"] == "OperationOutcome"
        async with client.post(log.hub + "/fhir/Observation", json={}) as anonymous:
            assert anonymous.status == 401
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")


async def test_guardian_connects_for_the_child_from_the_childs_space(hub: Hub) -> None:
    guardian = await add_patient(hub.db, GUARDIAN_INS, "Petit", "Louis")
    child = await add_patient(hub.db, CHILD_INS, "Petit", "Emma", phone=None, password=False)
    await add_guardianship(hub.db, guardian, child)
    await hub.login(GUARDIAN_INS)
    response = await hub.post("/espace", {"patient": str(child.id)}, csrf_from="/")
    assert response.status == 303
    await register(hub.db)
    log = client_of(hub)
    url = log.authorization_url()
    _r, page = await hub.page(local(url))
    assert "accéder à l&#39;espace de Emma Petit" in page
    tokens = await connect(hub, log)
    assert tokens["patient"] == CHILD_INS
    assert (await log.post_weight(24.3))[0] == 201
    async with hub.db.read() as session:
        child_lines = await read_history(session, child.id)
        own_lines = await read_history(session, guardian.id)
    whats = [(line.what, line.who) for line in child_lines]
    assert ("Service connecté à l'espace", "Louis Petit (représentant légal)") in whats
    assert (
        "Mesure enregistrée par un service connecté",
        "Carnet de poids (service connecté)",
    ) in whats
    assert not any("service" in line.what for line in own_lines)
    _r, profile = await hub.page("/profil")
    assert "Poids : 24,3 kg" in profile


async def test_errors_shown_to_the_user_are_never_redirected(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    await register(hub.db, client_id="examen", status="under_review")
    log = client_of(hub)
    good = urllib.parse.urlsplit(log.authorization_url())
    params = dict(urllib.parse.parse_qsl(good.query))

    async def shown(**changes: str | None) -> tuple[int, str]:
        asked = {k: v for k, v in {**params, **changes}.items() if v is not None}
        response, page = await hub.page("/oauth/autoriser?" + urllib.parse.urlencode(asked))
        return response.status, page

    status, page = await shown(redirect_uri="https://evil.example/cb")
    assert status == 400 and "invalid_request" in page and "evil.example" in page
    assert "Revenir au service" not in page and "https://evil.example/cb?" not in page
    for client_id in ("inconnu", "examen", None):
        status, page = await shown(client_id=client_id)
        assert status == 400 and "invalid_client" in page
        assert "n&#39;est pas au catalogue" in page
    status, page = await shown(redirect_uri=None)
    assert status == 400 and "invalid_request" in page


async def test_errors_sent_back_to_the_service(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(log.authorization_url()).query))

    async def returned(**changes: str | None) -> dict[str, str]:
        asked = {k: v for k, v in {**params, **changes}.items() if v is not None}
        response, page = await hub.page("/oauth/autoriser?" + urllib.parse.urlencode(asked))
        assert response.status == 200, page
        back = back_link(page)
        assert back.startswith(REDIRECT + "?")
        return query_of(back)

    missing = await returned(code_challenge=None, code_challenge_method=None)
    assert (
        missing["error"] == "invalid_request" and "code_challenge" in missing["error_description"]
    )
    assert missing["state"] == params["state"]
    plain = await returned(code_challenge_method="plain")
    assert plain["error"] == "invalid_request" and "S256" in plain["error_description"]
    assert (await returned(scope="documents:11488-4"))["error"] == "invalid_scope"
    assert (await returned(response_type="token"))["error"] == "unsupported_response_type"

    # The patient refuses: access_denied, and nothing is connected.
    status, page = await answer(hub, log.authorization_url(), None)
    assert status == 200 and "aucun accès" in page
    assert query_of(back_link(page))["error"] == "access_denied"
    _r, services = await hub.page("/services")
    assert "Déconnecter" not in services
    # A permission the service did not ask for: the consent page again, with the sentence.
    status, page = await answer(hub, log.authorization_url(), ["documents:11488-4"])
    assert status == 400 and "ne peut pas être donnée" in page
    status, page = await answer(hub, log.authorization_url(), [])
    assert status == 400 and "au moins une autorisation" in page


async def test_token_endpoint_errors(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    url = log.authorization_url()
    status, page = await answer(hub, url, log.scope.split())
    back = query_of(back_link(page))
    verifier = log.pending[back["state"]]
    good = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": REDIRECT,
        "client_id": "carnet",
        "code_verifier": verifier,
    }

    async def token(**changes: str | None) -> tuple[int, dict[str, str]]:
        sent = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return await log._post_form(sent)

    assert await token(grant_type="password") == (400, {"error": "unsupported_grant_type"})
    assert (await token(code=None))[1]["error"] == "invalid_request"
    assert (await token(code_verifier=None))[1]["error"] == "invalid_request"
    assert (await token(code_verifier="y" * 43))[1]["error"] == "invalid_grant"
    assert (await token(redirect_uri="http://127.0.0.1:9/autre"))[1]["error"] == "invalid_grant"
    assert (await token(code="not-the-code"))[1]["error"] == "invalid_grant"
    assert (await token(client_id="inconnu"))[1]["error"] == "invalid_client"
    assert (await token(client_secret="s"))[1]["error"] == "invalid_client"
    # None of these spent the code: the right request still gets the tokens, once.
    status, body = await token()
    assert status == 200 and body["patient"] == INS
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as client,
        client.post(log.hub + "/oauth/token", json=good) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"
        assert response.headers["Cache-Control"] == "no-store"


async def test_access_tokens_are_short_lived_and_refreshed(hub: Hub) -> None:
    from sqlalchemy import update

    from mss.db import utcnow

    await _claire(hub)
    await register(hub.db)
    await register(hub.db, client_id="examen", status="under_review")
    _r, page = await hub.page("/services")
    assert page.count("<h3>") == 1  # a service under review is not in the catalogue
    log = client_of(hub)
    tokens = await connect(hub, log)
    async with hub.db.write() as session:  # ten minutes later, as far as the token goes
        await session.execute(
            update(ServiceToken)
            .where(ServiceToken.access_hash == token_hash(tokens["access_token"]))
            .values(access_expires_at=utcnow())
        )
    assert (await log.post_weight(70))[0] == 401
    assert (await log.refresh())[0] == 200
    assert (await log.post_weight(70))[0] == 201


async def test_the_service_gives_its_tokens_back_rfc_7009(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    await register(hub.db, client_id="autre")
    log = client_of(hub)
    await connect(hub, log)
    other = client_of(hub, client_id="autre")
    other.tokens = dict(log.tokens)
    assert (await other.revoke())[1]["error"] == "invalid_grant"  # not its token
    assert (await log._post_form({"client_id": "carnet"}, path="/oauth/revoke"))[1][
        "error"
    ] == "invalid_request"
    assert (await log.revoke("access_token")) == (200, {})
    assert (await log.post_weight(70))[0] == 401
    assert (await log.refresh())[0] == 200  # the connection stands: only that token is gone
    assert (await log.post_weight(70))[0] == 201
    assert (await log.revoke("refresh_token")) == (200, {})
    assert (await log.post_weight(70))[0] == 401
    assert (await log.refresh())[0] == 400
    assert (await log.revoke("refresh_token")) == (200, {})  # unknown now: still 200 (§2.2)
    _r, page = await hub.page("/services")
    assert "Déconnecter Carnet de poids" not in page
    _r, history = await hub.page("/historique")
    assert "Service déconnecté de l&#39;espace" in history
    assert "Carnet de poids (service connecté)" in history


async def test_two_requests_with_one_code_get_one_token(hub: Hub) -> None:
    import asyncio

    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    url = log.authorization_url()
    _status, page = await answer(hub, url, log.scope.split())
    back = query_of(back_link(page))
    verifier = log.pending[back["state"]]
    sent = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": REDIRECT,
        "client_id": "carnet",
        "code_verifier": verifier,
    }
    answers = await asyncio.gather(*(log._post_form(dict(sent)) for _ in range(4)))
    assert sorted(status for status, _body in answers) == [200, 400, 400, 400]
    assert {body.get("error") for status, body in answers if status == 400} == {"invalid_grant"}


async def test_from_the_services_site_one_same_site_click_and_no_new_session(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    log = client_of(hub)
    path = local(log.authorization_url())
    response = await hub.client.get(
        path, headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False
    )
    page = await response.text()
    assert response.status == 200 and "Set-Cookie" not in response.headers
    assert "Continuer vers mon espace santé" in page and 'href="/oauth/autoriser?' in page
    # The same-site click: the signed-in session is still the one of the cookie.
    _r, consent = await hub.page(path)
    assert "Connecter Carnet de poids" in consent


async def test_connecting_again_replaces_the_connection(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db)
    first, second = client_of(hub), client_of(hub)
    await connect(hub, first)
    await connect(hub, second, ["measurements:write"])
    assert (await first.post_weight(70))[0] == 401
    assert (await second.post_weight(70))[0] == 201
    _r, page = await hub.page("/services")
    assert page.count("Déconnecter Carnet de poids") == 1


async def test_profile_and_agenda_scopes_on_the_consent_page(hub: Hub) -> None:
    await _claire(hub)
    await register(hub.db, scopes=("profile:read", "agenda:read"))
    log = client_of(hub)
    log.scope = "profile:read agenda:read"
    url = log.authorization_url()
    response, page = await hub.page(local(url))
    assert response.status == 200
    assert "Lire votre profil médical : allergies et traitements" in page
    assert "Lire votre agenda : vos rendez-vous" in page
    assert 'value="profile:read"' in page and 'value="agenda:read"' in page
    status, page = await answer(hub, url, ["profile:read"])  # the agenda left unticked
    assert status == 200 and "est connecté à votre espace" in page
    returned = query_of(back_link(page))
    tokens = (await log.exchange(returned["code"], returned["state"]))[1]
    assert tokens["scope"] == "profile:read" and tokens["patient"] == INS
    _response, listed = await hub.page("/services")
    connected = listed.split('class="event service-connecte"', 1)[1].split("</li>\n", 1)[0]
    assert "Lire votre profil médical" in connected and "Lire votre agenda" not in connected
    # The catalogue still shows all the service asks for.
    assert "Lire votre agenda : vos rendez-vous" in listed.split('class="event service"', 1)[1]
