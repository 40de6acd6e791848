"""The portal's middleware: session, idle logout, CSRF, and the security headers.

It acts only on the portal's own routes (named ``portal.*``), so the other
parts of the HTTPS application keep their own rules.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from mss.audit import record
from portal import sessions
from portal.context import VISIT, Visit, db_of, idle_limit, now_of, visit
from portal.pages import redirect, render

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
CSRF_FIELD = "csrf"
CSRF_REFUSAL = (
    "Ce formulaire n'a pas été reconnu : son jeton de sécurité manque ou a expiré. "
    "Par précaution, rien n'a été fait. Rechargez la page et recommencez."
)

# Pages that read a few rows by index (the messages): on SQLite their statements run on the
# loop's thread (``Database.inline``), not a thread hop each. Not the history: it may read a
# long chain.
INLINE_PAGES = frozenset(
    {"portal.messages", "portal.messages_sent", "portal.conversation", "portal.message"}
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_portal_route(request: web.Request) -> bool:
    name = request.match_info.route.resource.name if request.match_info.route.resource else None
    return bool(name and name.startswith("portal."))


async def _load_visit(request: web.Request) -> Visit:
    found = Visit()
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return found
    loaded = await sessions.load(db_of(request), token)
    if loaded is None:
        found.clear_cookie = True
        return found
    row = loaded.row
    if now_of(request) - row.last_seen_at > idle_limit(request):
        await _expire(request, row)
        found.expired = row.stage == sessions.SIGNED_IN
        found.clear_cookie = True
        return found
    found.row, found.account, found.held = row, loaded.patient, loaded.minors
    found.space_mailbox = loaded.space_mailbox
    found.space_mailbox_of = row.space_patient_id or row.patient_id
    return found


async def _expire(request: web.Request, row: Any) -> None:
    async with db_of(request).write() as session:
        found = await sessions.current(session, row)
        if found is None:
            return
        await session.delete(found)
        if row.stage == sessions.SIGNED_IN and row.patient_id is not None:
            minutes = int(idle_limit(request).total_seconds() // 60)
            record(
                session,
                "session_expired",
                actor_kind="system",
                actor="mss",
                patient_id=row.patient_id,
                source=request.remote or "",
                idle_minutes=minutes,
            )


def _same_origin(request: web.Request) -> bool:
    """A foreign Origin is refused; none or "null" (privacy settings) leaves the token to decide.

    The origin is scheme, host and port (RFC 6454 §4): ``http://`` + our host is another origin.
    """
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return True
    sent = urlsplit(origin)
    return sent.scheme.lower() == request.scheme and sent.netloc.lower() == request.host.lower()


async def _csrf_ok(request: web.Request, state: Visit) -> bool:
    if state.row is None or not _same_origin(request):
        return False
    sent = request.headers.get("X-CSRF-Token")
    if sent is None:
        form = await request.post()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent, state.row.csrf_token)


def _protect(response: web.StreamResponse, static: bool) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"  # browsers then send our Origin on POSTs
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not static:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"


def _cookies(response: web.StreamResponse, state: Visit) -> None:
    if state.new_token is not None:
        response.set_cookie(
            sessions.COOKIE,
            state.new_token,
            secure=True,
            httponly=True,
            samesite="Strict",
            path="/",
        )
    elif state.clear_cookie:
        response.del_cookie(
            sessions.COOKIE, secure=True, httponly=True, samesite="Strict", path="/"
        )


@web.middleware
async def portal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_portal_route(request):
        return await handler(request)
    resource = request.match_info.route.resource
    page = resource.name if resource is not None else None
    if page == "portal.static":
        static_response = await handler(request)
        _protect(static_response, static=True)
        return static_response
    with db_of(request).inline():  # one statement by the token's hash
        state = await _load_visit(request)
    request[VISIT] = state
    if request.method not in ("GET", "HEAD"):
        if state.expired:
            response: web.StreamResponse = redirect("/connexion?motif=inactivite")
        elif not await _csrf_ok(request, state):
            response = await render(
                request,
                "refus.html",
                {"title": "Requête refusée", "sentence": CSRF_REFUSAL},
                status=403,
            )
        else:
            response = await handler(request)
    elif page in INLINE_PAGES:
        with db_of(request).inline():
            response = await handler(request)
    else:
        response = await handler(request)
    state = visit(request)
    if state.row is not None and state.new_token is None and not state.clear_cookie:
        await sessions.touch(db_of(request), state.row, now_of(request), idle_limit(request))
    _cookies(response, state)
    _protect(response, static=False)
    return response
