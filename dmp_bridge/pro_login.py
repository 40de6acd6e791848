"""The professionals' browser login by OpenID Connect (Pro Santé Connect style): ``/pro``.

- ``GET /pro``: who is signed in (name, RPPS, level, until when) with a logout button, or
  the button "Se connecter avec Pro Santé Connect";
- ``GET /pro/connexion``: a pending login (state, nonce, PKCE verifier kept server-side,
  ``dmp_bridge.pro_sessions``) and the redirect to the provider's authorization endpoint;
- ``GET /pro/retour?code=...&state=...``: the pending login of this browser taken once, the
  code exchanged, the ID token verified (``mss.oidc``), the identity judged
  (``decide_oidc_professional``), then a signed-in session with a new cookie token;
- ``POST /pro/deconnexion``: the session ended (same origin and the session's CSRF token).

The signed-in browser reads the document API (GET ``/fhir/...``) with its cookie. Each
login, refused login and logout is an audit event in the professional's chain (no
patient's data is touched by it). The pages are French, for a phone as for a desk.
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import logging
from urllib.parse import urlsplit

from aiohttp import web

from dmp_bridge import pro_sessions
from dmp_bridge.oidc_auth import install_relying_party, professional_of, relying_party
from mss.audit import record
from mss.config import portal_url
from mss.db import utcnow
from mss.directory.models import Professional
from mss.oidc import OidcRefused
from mss.policy import Decision
from mss.policy.login import paris_time
from mss.policy.professional_login import (
    PROVIDER_ERROR,
    STATE_MISMATCH,
    OidcIdentity,
    token_refused,
)
from mss.web import DB, SETTINGS

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
COOKIE_OPTIONS = {"secure": True, "httponly": True, "samesite": "Lax", "path": "/"}
# Lax, not Strict: the provider sends the browser back to /pro/retour from its own site, and
# the pending login's cookie must come with that navigation. A POST from elsewhere gets no cookie.


def _page(title: str, body: str, *, status: int = 200) -> web.Response:
    text = f"""<!doctype html>
<html lang="fr">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(title)} · Espace professionnel</title>
  <link rel="stylesheet" href="/static/portal.css">
</head>
<body>
  <header class="site-header"><div class="bar"><p class="brand">
    <a href="/pro">Messagerie santé</a></p></div></header>
  <main id="contenu">
    <h1>{html.escape(title)}</h1>
{body}
  </main>
</body>
</html>
"""
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
        },
    )


def _refusal_page(decision: Decision) -> web.Response:
    body = (
        f'    <p class="message error" role="alert">{html.escape(decision.sentence_fr)}</p>\n'
        '    <p><a class="button" href="/pro/connexion">Recommencer la connexion</a></p>'
    )
    status = decision.status if decision.status >= 400 else 403
    return _page("Connexion refusée", body, status=status)


def _rpps(id_nat: str) -> str:
    return id_nat[1:] if id_nat.startswith("8") and len(id_nat) == 12 else id_nat


async def home(request: web.Request) -> web.StreamResponse:
    """Who is signed in, or the way to sign in."""
    configured = _configured(request)
    token = request.cookies.get(pro_sessions.COOKIE)
    if token:
        async with request.app[DB].read() as session:
            row = await pro_sessions.signed_in(session, token, utcnow())
            professional = (
                await session.get(Professional, row.professional_id)
                if row is not None and row.professional_id is not None
                else None
            )
        if row is not None and professional is not None:
            until = paris_time(row.expires_at)
            body = f"""    <p class="message notice" role="status">Vous êtes connecté(e) :
      <strong>{html.escape(professional.display_name)}</strong>,
      RPPS {html.escape(_rpps(professional.id_nat))}.</p>
    <p>Connexion par Pro Santé Connect (niveau {html.escape(row.acr or "non précisé")}),
      valable jusqu'à {until} (heure de Paris).</p>
    <p>Avec cette connexion, ce navigateur ouvre les documents du DMP de vos patients
      (API documentaire, <code>/fhir/DocumentReference</code>), selon leurs choix de
      consentement. Votre logiciel, lui, présente son jeton Pro Santé Connect.</p>
    <form method="post" action="/pro/deconnexion">
      <input type="hidden" name="csrf" value="{html.escape(row.csrf_token)}">
      <button type="submit">Se déconnecter</button>
    </form>"""
            return _page("Espace professionnel", body)
    if not configured:
        return _refusal_page(token_refused("oidc_not_configured"))
    body = """    <p>Cet espace est réservé aux professionnels de santé inscrits sur ce service.</p>
    <p><a class="button" href="/pro/connexion">Se connecter avec Pro Santé Connect</a></p>
    <p>Munissez-vous de votre carte CPS ou de l'application e-CPS.</p>"""
    return _page("Espace professionnel", body)


def _configured(request: web.Request) -> bool:
    try:
        relying_party(request.app)
    except OidcRefused:
        return False
    return True


async def start(request: web.Request) -> web.StreamResponse:
    """A new pending login, then off to the provider."""
    try:
        party = relying_party(request.app)
        login = await party.start_login()
    except OidcRefused as refused:
        return _refusal_page(refused.decision)
    async with request.app[DB].write() as session:
        token = await pro_sessions.start_pending(session, login, utcnow(), request.remote or "")
    response = web.Response(status=302, headers={"Location": login.url})
    response.set_cookie(pro_sessions.COOKIE, token, **COOKIE_OPTIONS)  # type: ignore[arg-type]
    return response


async def finish(request: web.Request) -> web.StreamResponse:
    """The provider's answer: this browser's pending login, the code, the ID token, the rule."""
    source = request.remote or ""
    token = request.cookies.get(pro_sessions.COOKIE, "")
    state = request.query.get("state", "")
    now = utcnow()
    if "error" in request.query and not state:
        # RFC 6749 §4.1.2.1 wants the state back with an error; some providers drop it. The
        # answer can then start nothing: the browser's pending login is spent, the error said.
        if token:
            async with request.app[DB].write() as session:
                await pro_sessions.end(session, token)
        return await _refused(request, _provider_error(request), None, clear=True)
    async with request.app[DB].write() as session:  # taken once, whatever follows
        pending = await pro_sessions.take_pending(session, token, state, now) if token else None
    if pending is None or pending.nonce is None or pending.code_verifier is None:
        return await _refused(request, token_refused(STATE_MISMATCH), None, clear=True)
    if "error" in request.query:
        return await _refused(request, _provider_error(request), None)
    code = request.query.get("code", "")
    try:
        party = relying_party(request.app)
        if not code:
            raise OidcRefused(token_refused(PROVIDER_ERROR, "no code in the answer"))
        verified = await party.finish_login(code, pending.code_verifier, pending.nonce)
    except OidcRefused as refused:
        return await _refused(request, refused.decision, None)
    identity = verified.identity
    settings = request.app[SETTINGS]
    try:
        async with request.app[DB].write() as session:
            professional = await professional_of(
                session, identity, tuple(party.settings.acr_values)
            )
            cookie, row = await pro_sessions.sign_in(
                session,
                professional.id,
                identity.acr or "",
                now,
                dt.timedelta(minutes=settings.oidc.session_minutes),
                source,
            )
            record(
                session,
                "professional_login",
                actor_kind="professional",
                actor=professional.id_nat,
                source=source,
                method="oidc",
                acr=row.acr,
                issuer=identity.issuer,
            )
    except OidcRefused as refused:
        return await _refused(request, refused.decision, identity)
    log.info("professional %s signed in by OpenID Connect from %s", professional.id_nat, source)
    response = web.Response(status=302, headers={"Location": "/pro"})
    response.set_cookie(pro_sessions.COOKIE, cookie, **COOKIE_OPTIONS)  # type: ignore[arg-type]
    return response


def _provider_error(request: web.Request) -> Decision:
    error = request.query.get("error", "")
    described = request.query.get("error_description", "")
    detail = f"{error}: {described}" if described else error
    printable = "".join(c if c.isprintable() else " " for c in detail[:200])
    return token_refused(PROVIDER_ERROR, printable)


async def _refused(
    request: web.Request,
    decision: Decision,
    identity: OidcIdentity | None,
    *,
    clear: bool = False,
) -> web.Response:
    """The refusal page, and the refused login in the audit trail."""
    actor = (identity.id_nat if identity is not None else None) or "unknown"
    async with request.app[DB].write() as session:
        record(
            session,
            "professional_login_refused",
            actor_kind="professional",
            actor=actor,
            source=request.remote or "",
            method="oidc",
            refusal=decision.reason,
        )
    log.warning(
        "professional login by OpenID Connect refused from %s: %s (%s)",
        request.remote,
        decision.reason,
        decision.sentence,
    )
    response = _refusal_page(decision)
    if clear or request.cookies.get(pro_sessions.COOKIE):
        response.del_cookie(pro_sessions.COOKIE, path="/", secure=True, httponly=True)
    return response


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return True
    sent = urlsplit(origin)
    return sent.scheme.lower() == request.scheme and sent.netloc.lower() == request.host.lower()


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session: same origin, and the session's own CSRF token."""
    token = request.cookies.get(pro_sessions.COOKIE, "")
    form = await request.post()
    sent = form.get("csrf")
    async with request.app[DB].write() as session:
        row = await pro_sessions.signed_in(session, token, utcnow()) if token else None
        if (
            row is None
            or not _same_origin(request)
            or not isinstance(sent, str)
            or not hmac.compare_digest(sent, row.csrf_token)
        ):
            return _page(
                "Requête refusée",
                '    <p class="message error" role="alert">Ce formulaire n\'a pas été reconnu : '
                "rien n'a été fait. Rechargez la page et recommencez.</p>",
                status=403,
            )
        professional = await session.get(Professional, row.professional_id)
        await pro_sessions.end(session, token)
        record(
            session,
            "professional_logout",
            actor_kind="professional",
            actor=professional.id_nat if professional is not None else "unknown",
            source=request.remote or "",
        )
    response = web.Response(status=302, headers={"Location": "/pro"})
    response.del_cookie(pro_sessions.COOKIE, path="/", secure=True, httponly=True)
    return response


def setup(app: web.Application) -> None:
    """The /pro routes, and the relying party when ``[oidc]`` names a provider."""
    settings = app[SETTINGS]
    install_relying_party(app, settings, portal_url(settings))
    app.router.add_get("/pro", home, name="pro.home")
    app.router.add_get("/pro/connexion", start, name="pro.login")
    app.router.add_get("/pro/retour", finish, name="pro.back")
    app.router.add_post("/pro/deconnexion", logout, name="pro.logout")
