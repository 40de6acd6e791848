"""``setup(app)``: the patient portal's routes, templates, static files and middleware under
``/``."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from mss.web import SERVICES
from portal.clock import Clock
from portal.context import (
    CLOCK,
    CORRESPONDENTS,
    CORRESPONDENTS_KEPT,
    CORRESPONDENTS_MAX_AGE,
    INBOX_CACHE,
    JINJA,
)
from portal.french import FILTERS
from portal.inbox_cache import InboxCache
from portal.kept import Kept
from portal.security import Handler, portal_middleware
from portal.views import (
    account,
    activation,
    agenda,
    agenda_sharing,
    dossier,
    guide,
    history,
    home,
    identity_activation,
    login,
    messages,
    profile,
    profile_send,
    security,
    services,
)

STATIC = Path(__file__).parent / "static"

STATE_LABELS = {
    "created": "En préparation",
    "opposition_window": "En attente d'activation",
    "active": "Actif",
    "deactivated": "Désactivé",
    "opposed": "Refusé (opposition)",
    "closed": "Clôturé",
}
STATE_TEXTS = {
    "created": "Le compte est en préparation : un courrier avec un code d'activation va être "
    "envoyé.",
    "opposition_window": "Le compte n'est pas encore ouvert : activez-le avec le code reçu "
    "par courrier.",
    "active": "Le compte reçoit les messages des professionnels de santé.",
    "deactivated": "Le compte est en pause : les professionnels ne peuvent pas y écrire. "
    "Vous pouvez le réactiver à tout moment.",
    "opposed": "Vous vous êtes opposé à la création de ce compte.",
    "closed": "Le compte est clôturé : il ne reçoit plus de messages.",
}

# path, route name, {method: handler}
ROUTES: list[tuple[str, str, dict[str, Handler]]] = [
    ("/", "home", {"GET": home.home}),
    ("/espace", "space", {"POST": home.switch_space}),
    ("/connexion", "login", {"GET": login.login_form, "POST": login.login_password}),
    ("/connexion/code", "code", {"GET": login.code_form, "POST": login.code_submit}),
    ("/connexion/code/renvoyer", "code_resend", {"POST": login.code_resend}),
    ("/deconnexion", "logout", {"POST": login.logout}),
    ("/session/expiree", "expired", {"GET": login.session_expired}),
    ("/session/prolonger", "keep_alive", {"POST": login.keep_alive}),
    ("/activation", "activation", {"GET": activation.activation_form, "POST": activation.activate}),
    (
        "/activation/sans-courrier",
        "activation_identity",
        {"GET": identity_activation.identity_form, "POST": identity_activation.identity_submit},
    ),
    (
        "/activation/sans-courrier/code",
        "activation_identity_code",
        {"GET": identity_activation.code_form, "POST": identity_activation.code_submit},
    ),
    ("/opposition", "opposition", {"GET": activation.opposition_form, "POST": activation.oppose}),
    ("/compte", "account", {"GET": account.account}),
    ("/compte/avis", "account_channels", {"POST": account.choose_channels}),
    ("/compte/{action}", "account_change", {"GET": account.confirm, "POST": account.change}),
    ("/historique", "history", {"GET": history.history}),
    ("/aide", "help", {"GET": guide.help_page}),
    ("/securite", "security", {"GET": security.security}),
    ("/securite/totp/commencer", "totp_start", {"POST": security.start_enrolment}),
    ("/securite/totp", "totp_finish", {"POST": security.finish_enrolment}),
    ("/securite/totp/retirer", "totp_remove", {"POST": security.remove}),
    *agenda.ROUTES,
    *agenda_sharing.ROUTES,
    *profile_send.ROUTES,
    *profile.ROUTES,
    *messages.ROUTES,
    *dossier.ROUTES,
    *services.ROUTES,
]


def setup(app: web.Application) -> None:
    """Add the portal to the hub's HTTPS application; ``services.portal_clock`` replaces the
    clock."""
    clock = app[SERVICES].portal_clock
    app[CLOCK] = clock if isinstance(clock, Clock) else Clock()
    # Each process keeps its own (mss serve may run several).
    app[INBOX_CACHE] = InboxCache()
    app[CORRESPONDENTS] = Kept(CORRESPONDENTS_MAX_AGE, CORRESPONDENTS_KEPT)
    # Templates are compiled once per process and kept (no file check on each render): a changed
    # template needs a restart. No bytecode cache on disk: it would only speed up the first render.
    env = aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.PackageLoader("portal", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        auto_reload=False,
    )
    env.globals.update(state_labels=STATE_LABELS, state_texts=STATE_TEXTS)
    env.filters.update(FILTERS)
    app.middlewares.append(portal_middleware)
    for path, name, handlers in ROUTES:
        resource = app.router.add_resource(path, name=f"portal.{name}")
        for method, handler in handlers.items():
            resource.add_route(method, handler)
    app.router.add_static("/static/", STATIC, name="portal.static")
