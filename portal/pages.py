"""Rendering a page, and the guard of every page that needs a signed-in patient."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from mss.directory.models import PatientState
from mss.patients import Actor
from mss.policy.redirect import local_path
from portal import sessions
from portal.context import JINJA, db_of, idle_limit, now_of, source_of, visit

WARNING_SECONDS = 60

Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


def redirect(location: str) -> web.Response:
    """A 303 to a portal path (after a POST, the browser then GETs it)."""
    return web.Response(status=303, headers={"Location": location})


@dataclass(frozen=True)
class _RouteProbe:
    """A GET of ``rel_url``, as far as ``UrlDispatcher.resolve`` looks at a request."""

    rel_url: URL
    method: str = "GET"


async def portal_target(request: web.Request, target: str, default: str = "/") -> str:
    """``target`` if it is a portal page this application routes, else ``default`` (no open
    redirect)."""
    path = local_path(target)
    if path is None:
        return default
    url = URL(path)
    if url.absolute:
        return default
    # The router reads only the URL and the method (the request's body is read: it cannot be
    # cloned).
    match = await request.app.router.resolve(_RouteProbe(url))  # type: ignore[arg-type]
    name = (
        match.route.resource.name if match.http_exception is None and match.route.resource else None
    )
    if not name or not name.startswith("portal.") or name == "portal.static":
        return default
    return path


async def ensure_session(request: web.Request) -> None:
    """Give an anonymous visitor a session, so their forms carry a CSRF token."""
    state = visit(request)
    if state.row is None:
        state.new_token, state.row = await sessions.start_anonymous(
            db_of(request), now_of(request), source_of(request)
        )


async def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """A page with what every template needs: CSRF token, who acts, in which space, idle timings."""
    await ensure_session(request)
    state = visit(request)
    idle = int(idle_limit(request).total_seconds())
    signed_in = state.person is not None
    values = {
        "csrf": state.row.csrf_token if state.row else "",
        "person": state.person,
        "space": state.space,
        "minors": state.minors,
        "signed_in": signed_in,
        "idle_seconds": idle,
        "idle_minutes": idle // 60,
        "warn_seconds": max(idle - WARNING_SECONDS, idle // 2),
        "path": request.path_qs,
        "here": request.rel_url.raw_path_qs,
        "states": PatientState,
        **context,
    }
    return aiohttp_jinja2.render_template(template, request, values, status=status, app_key=JINJA)


def actor(request: web.Request) -> Actor:
    """The signed-in person acting in the current space."""
    state = visit(request)
    assert state.person is not None and state.space is not None
    return Actor.person(state.person, state.space, source_of(request))


SIGNED_OUT_STATES = (PatientState.CLOSED, PatientState.OPPOSED)


def signed_in(page: Page) -> Page:
    """Only for a signed-in patient; sets the person, the space shown and the minors they hold."""

    @functools.wraps(page)
    async def guarded(request: web.Request) -> web.StreamResponse:
        state = visit(request)
        row = state.row
        if row is None or row.stage != sessions.SIGNED_IN or row.patient_id is None:
            return redirect("/connexion?motif=inactivite" if state.expired else "/connexion")
        person = state.account  # read with the row by the middleware, with the minors held
        if person is None or person.id != row.patient_id or person.state in SIGNED_OUT_STATES:
            await sessions.end(db_of(request), row)
            state.row, state.clear_cookie = None, True
            return redirect("/connexion")
        _enter_space(request)
        return await page(request)

    return guarded


def _enter_space(request: web.Request) -> None:
    """Set the person, the space shown (a minor they hold now, else their own) and the minors."""
    state = visit(request)
    assert state.row is not None and state.account is not None
    person = state.account
    space = next((minor for minor in state.held if minor.id == state.row.space_patient_id), person)
    state.person, state.space, state.minors = person, space, state.held


def open_to_all(page: Page) -> Page:
    """A page anyone may read; a signed-in patient sees it with their menu (nothing else
    changes)."""

    @functools.wraps(page)
    async def shown(request: web.Request) -> web.StreamResponse:
        state = visit(request)
        row, person = state.row, state.account
        if (
            row is not None
            and row.stage == sessions.SIGNED_IN
            and person is not None
            and person.id == row.patient_id
            and person.state not in SIGNED_OUT_STATES
        ):
            _enter_space(request)
        return await page(request)

    return shown
