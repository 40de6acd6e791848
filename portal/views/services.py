"""The catalogue of services, the consent page of a connection (OAuth 2.0 authorization
endpoint, RFC 6749 §3.1) and the list of connected services with their one-click revocation."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDict

from mss.catalogue import store
from mss.catalogue.oauth import AuthorizationRefused, answer_authorization, check_authorization
from mss.config import portal_url
from mss.policy.services import ServiceStatus, scope_label
from portal.context import JINJA, db_of, settings_of, source_of, visit
from portal.pages import redirect, render, signed_in

AUTHORIZE_PATH = "/oauth/autoriser"
# The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3), carried by the
# consent form.
OAUTH_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
NOTICES = {"deconnecte": "Le service est déconnecté : il ne peut plus rien lire ni écrire."}
ERRORS_FR = {
    "invalid_client": "Ce service n'est pas au catalogue (inconnu, en cours d'examen ou retiré).",
    "invalid_request": "La demande de connexion du service est incorrecte.",
    "invalid_scope": "Le service demande une autorisation qui ne lui a pas été accordée au "
    "catalogue.",
}


def _base(request: web.Request) -> str:
    return portal_url(settings_of(request)) + AUTHORIZE_PATH


@signed_in
async def catalogue(request: web.Request) -> web.StreamResponse:
    """The referenced services, and those connected to the space shown."""
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        services = await store.list_services(session, ServiceStatus.REFERENCED)
        connected = await store.connections_of(session, state.space.id)
    return await render(
        request,
        "services.html",
        {
            "title": "Services",
            "services": services,
            "connected": connected,
            "scope_label": scope_label,
            "notice": NOTICES.get(request.query.get("fait", ""), ""),
        },
    )


@signed_in
async def revoke(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.space is not None and state.person is not None
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPNotFound()
    async with db_of(request).write() as session:
        done = await store.revoke(
            session, state.space, state.person, int(text), source=source_of(request)
        )
    if not done:
        raise web.HTTPNotFound()
    return redirect("/services?fait=deconnecte")


async def _refused_page(request: web.Request, refused: AuthorizationRefused) -> web.Response:
    """A refusal shown to the patient (never sent to a redirect URI that is not the service's)."""
    return await render(
        request,
        "services_refus.html",
        {
            "title": "Connexion impossible",
            "sentence": ERRORS_FR.get(refused.error, "La demande de connexion est refusée."),
            "error": refused.error,
            "description": refused.description,
        },
        status=400,
    )


async def _back_to_service(
    request: web.Request, location: str, service_name: str, granted: bool
) -> web.Response:
    """The way back to the service. A link, not a redirect: the portal's CSP (form-action
    'self') forbids a form's answer to leave the portal."""
    return await render(
        request,
        "services_retour.html",
        {
            "title": "Service connecté" if granted else "Connexion refusée",
            "location": location,
            "service_name": service_name,
            "granted": granted,
        },
    )


async def authorize_entry(request: web.Request) -> web.StreamResponse:
    """The service's link to the consent page comes from another site: the session cookie
    (SameSite=Strict, RFC 6265bis) is not sent with it. One click on a link of the portal's
    own page, a same-site navigation, brings it back."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        # Rendered without a session: a new anonymous one would replace the signed-in cookie.
        return aiohttp_jinja2.render_template(
            "services_continuer.html",
            request,
            {"title": "Connexion d'un service", "signed_in": False, "here": request.path_qs},
            app_key=JINJA,
        )
    return await authorize_form(request)


@signed_in
async def authorize_form(request: web.Request) -> web.StreamResponse:
    """The consent page: who asks, for whose space, and each scope to tick."""
    state = visit(request)
    assert state.space is not None
    params = MultiDict((k, v) for k, v in request.query.items())
    async with db_of(request).read() as session:
        asked = await check_authorization(session, params, _base(request))
    if isinstance(asked, AuthorizationRefused):
        if asked.redirect is not None:
            return await _back_to_service(request, asked.redirect, "", granted=False)
        return await _refused_page(request, asked)
    return await render(
        request, "services_autoriser.html", _consent(params, asked.service, asked.scopes)
    )


def _consent(
    params: MultiDict[str], service: Any, scopes: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "title": f"Connecter {service.name}",
        "service": service,
        "scopes": [(s, scope_label(s)) for s in scopes],
        "hidden": [(k, params[k]) for k in OAUTH_PARAMETERS if k in params],
        **extra,
    }


@signed_in
async def authorize_answer(request: web.Request) -> web.StreamResponse:
    state = visit(request)
    assert state.space is not None and state.person is not None
    form = await request.post()
    params: MultiDict[str] = MultiDict()
    for key in OAUTH_PARAMETERS:
        for value in form.getall(key, []):
            params.add(key, str(value))
    granted = form.get("reponse") == "autoriser"
    chosen = [str(v) for v in form.getall("autorisation", [])] if granted else None
    async with db_of(request).write() as session:
        answer = await answer_authorization(
            session,
            params,
            _base(request),
            space=state.space,
            person=state.person,
            chosen=chosen,
            source=source_of(request),
        )
    if isinstance(answer, AuthorizationRefused):
        if answer.asked is not None:  # the permissions chosen: the consent page again
            asked = answer.asked
            context = _consent(params, asked.service, asked.scopes, error=answer.description)
            return await render(request, "services_autoriser.html", context, status=400)
        return await _refused_page(request, answer)
    return await _back_to_service(
        request, answer.location, answer.asked.service.name, granted=granted
    )


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("/services", "services", {"GET": catalogue}),
    ("/services/connexions/{id}/deconnecter", "service_revoke", {"POST": revoke}),
    (AUTHORIZE_PATH, "oauth_authorize", {"GET": authorize_entry, "POST": authorize_answer}),
]
