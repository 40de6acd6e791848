"""Every portal page: strict CSP, no caching, no framing; the session cookie's attributes and
rotation."""

from __future__ import annotations

import asyncio
import ssl
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mss.config import Settings
from mss.db import Database
from mss.http import build_app
from mss.services import Services
from portal.sessions import COOKIE
from tests.portal.conftest import Hub, add_patient, server_ssl

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
        assert (
            "<script>" not in html and " style=" not in html
        )  # nothing inline for the CSP to block


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
    response = await hub.post(
        "/connexion", {"identifiant": INS, "mot_de_passe": "mon chat dort 3 fois"}
    )
    middle = SimpleCookie(_cookie_header(response))[COOKIE].value
    code = hub.last_code("+33612345678")
    response = await hub.post("/connexion/code", {"code": code})
    after = SimpleCookie(_cookie_header(response))[COOKIE].value
    assert len({before, middle, after}) == 3
    # the pre-login token is worthless now: a client holding it is not signed in
    hub.client.session.cookie_jar.update_cookies({COOKIE: before}, hub.client.make_url("/"))
    response, _html = await hub.page("/")
    assert response.status == 303 and response.headers["Location"] == "/connexion"


def _assert_hardened(response: object, what: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    hsts = headers.get("Strict-Transport-Security", "")
    directives = {
        part.strip().split("=")[0].lower(): part.strip() for part in hsts.split(";") if part.strip()
    }
    assert "includesubdomains" in directives, f"{what}: HSTS {hsts!r} lacks includeSubDomains"
    assert int(directives["max-age"].split("=")[1]) >= 31536000, f"{what}: HSTS {hsts!r}"
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Server", "mss-hub") == "mss-hub", (
        f"{what}: Server {headers.get('Server')!r}"
    )


async def test_error_responses_carry_hsts_nosniff_and_no_server_version(
    settings: Settings, db: Database, tls_files: tuple[Path, Path]
) -> None:
    app = build_app(settings, db, Services(settings))

    async def crashes(_request: web.Request) -> web.Response:
        raise RuntimeError("a handler that fails")

    async def refuses(_request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(text="refused by aiohttp's own exception")

    app.router.add_get("/essai/panne", crashes)
    app.router.add_get("/essai/refus", refuses)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ssl(tls_files))
    client = TestClient(server, connector=aiohttp.TCPConnector(ssl=False))
    await client.start_server()
    try:
        for method, path, status in (
            ("GET", "/healthz", 200),
            ("GET", "/connexion", 200),
            ("GET", "/nulle-part", 404),
            ("DELETE", "/connexion", 405),
            ("GET", "/essai/refus", 400),
            ("GET", "/essai/panne", 500),
            ("GET", "/static/absent.css", 404),
        ):
            response = await client.request(method, path, allow_redirects=False)
            assert response.status == status, (method, path)
            _assert_hardened(response, f"{method} {path}")
        # a request aiohttp cannot even parse: answered by aiohttp itself, still without its version
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nnot a header\r\n\r\n")
        head = (await reader.read(4096)).split(b"\r\n\r\n")[0].decode()
        writer.close()
        assert head.startswith(("HTTP/1.0 400", "HTTP/1.1 400")), head
        assert "aiohttp" not in head and "Python" not in head, head
    finally:
        await client.close()
