"""Every portal page: strict CSP, no caching, no framing; the session cookie's attributes and rotation."""

from __future__ import annotations

from http.cookies import SimpleCookie

from portal.sessions import COOKIE
from tests.portal.conftest import Hub, add_patient

INS = "201751234560158"


def _cookie_header(response: object) -> str:
    headers = response.headers.getall("Set-Cookie", [])  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(COOKIE + "=")]
    assert found, f"no {COOKIE} cookie set"
    return found[-1]


async def test_pages_carry_csp_no_store_and_no_framing(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Durand", "Alice")
    for path in ("/connexion", "/activation", "/opposition"):
        response, _html = await hub.page(path)
        assert response.status == 200
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
    await hub.login(INS)
    for path in ("/", "/historique", "/compte", "/securite"):
        response, html = await hub.page(path)
        assert response.status == 200, html
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "<script>" not in html and " style=" not in html  # nothing inline for the CSP to block


async def test_static_files_are_served_with_the_csp(hub: Hub) -> None:
    for path in ("/static/portal.css", "/static/session.js"):
        response, _body = await hub.page(path)
        assert response.status == 200
        assert "Content-Security-Policy" in response.headers


async def test_cookie_is_secure_httponly_strict_host_only(hub: Hub) -> None:
    response, _html = await hub.page("/connexion")
    header = _cookie_header(response)
    morsel = SimpleCookie(header)[COOKIE]
    assert morsel["secure"] and morsel["httponly"]
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    assert not morsel["domain"]
    assert COOKIE.startswith("__Host-")


async def test_the_session_id_is_rotated_at_each_login_step(hub: Hub) -> None:
    await add_patient(hub.db, INS, "Durand", "Alice")
    response, _html = await hub.page("/connexion")
    before = SimpleCookie(_cookie_header(response))[COOKIE].value
    response = await hub.post("/connexion", {"identifiant": INS, "mot_de_passe": "mon chat dort 3 fois"})
    middle = SimpleCookie(_cookie_header(response))[COOKIE].value
    code = hub.last_code("+33612345678")
    response = await hub.post("/connexion/code", {"code": code})
    after = SimpleCookie(_cookie_header(response))[COOKIE].value
    assert len({before, middle, after}) == 3
    # the pre-login token is worthless now: a client holding it is not signed in
    hub.client.session.cookie_jar.update_cookies({COOKIE: before}, hub.client.make_url("/"))
    response, _html = await hub.page("/")
    assert response.status == 303 and response.headers["Location"] == "/connexion"
