"""A POST without the session's CSRF token (or from another origin) is refused with a sentence."""

from __future__ import annotations

from tests.portal.conftest import PASSWORD, Hub, add_patient

INS = "201751234560257"
SENTENCE = "jeton de sécurité manque ou a expiré"


async def test_login_post_without_token_is_refused(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Petit", "Louise")
    await hub.page("/connexion")  # the browser has a session, but the form was forged
    response = await hub.client.post(
        "/connexion", data={"identifiant": INS, "mot_de_passe": PASSWORD}, allow_redirects=False
    )
    assert response.status == 403
    assert SENTENCE in (await response.text()).replace("&#39;", "'")


async def test_wrong_token_and_foreign_origin_are_refused(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Petit", "Louise")
    await hub.page("/connexion")
    response = await hub.client.post(
        "/connexion",
        data={"csrf": "forged", "identifiant": INS, "mot_de_passe": PASSWORD},
        allow_redirects=False,
    )
    assert response.status == 403
    token = await hub.csrf()
    response = await hub.client.post(
        "/connexion",
        data={"csrf": token, "identifiant": INS, "mot_de_passe": PASSWORD},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_signed_in_forged_post_changes_nothing(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Petit", "Louise")
    await hub.login(INS)
    response = await hub.client.post("/compte/desactiver", data={}, allow_redirects=False)
    assert response.status == 403
    async with hub.db.read() as session:
        from mss.directory.models import Patient, PatientState

        fresh = await session.get(Patient, patient.id)
    assert fresh is not None and fresh.state is PatientState.ACTIVE
    response = await hub.client.post("/deconnexion", data={"csrf": "nope"}, allow_redirects=False)
    assert response.status == 403
    response, _html = await hub.page("/")
    assert response.status == 200  # still signed in: the forged logout did nothing


async def test_same_host_and_port_over_http_is_another_origin(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Petit", "Louise")
    host = f"127.0.0.1:{hub.client.server.port}"
    token = await hub.csrf()
    response = await hub.client.post(
        "/connexion",
        data={"csrf": token, "identifiant": INS, "mot_de_passe": PASSWORD},
        headers={"Origin": f"http://{host}"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert SENTENCE in (await response.text()).replace("&#39;", "'")
    token = await hub.csrf()
    response = await hub.client.post(
        "/connexion",
        data={"csrf": token, "identifiant": INS, "mot_de_passe": PASSWORD},
        headers={"Origin": f"https://{host}"},
        allow_redirects=False,
    )
    assert response.status == 303  # our own origin: the login goes on
