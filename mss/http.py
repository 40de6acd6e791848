"""The HTTPS application on port 8443: FHIR directory, autoconfig, portal, document API."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from typing import Any

from aiohttp import web, web_response

from mss import log_format
from mss.config import Settings
from mss.crypto.implicit_tls import ImplicitTls
from mss.crypto.tls import RotatingServerContext
from mss.db import Database
from mss.services import Services
from mss.web import DB, SERVICES, SETTINGS

log = logging.getLogger("mss.http")
access_log = logging.getLogger("mss.http.access")

# Each module exposes setup(app); the order is the order of route registration.
PARTS = (
    "mss.health",  # /healthz, /readyz, /metrics
    "dmp_bridge.api",  # before the directory, whose /fhir/{tail} catch-all would shadow it
    "mss.directory.fhir_api",
    "mss.mailbox.autoconfig",
    "mss.catalogue.http",  # the catalogue's OAuth token endpoint
    "portal.app",
)


# RFC 6797 §6.1: a year, and every subdomain (the portal and the APIs share the hub's name).
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SERVER_NAME = "mss-hub"  # not aiohttp's name and version
# A request aiohttp cannot parse gets its 400 from aiohttp itself, before any part of the
# application runs; its Server header is this module default, read for every response.
web_response.SERVER_SOFTWARE = SERVER_NAME


REQUEST_ID = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("request_id", str)


@web.middleware
async def tag_request(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every log line of a request carries its id (``mss.log_format``), sent back as X-Request-Id.

    One INFO line per request: method, path (never the query, which may hold a search), status.
    """
    rid = log_format.request_id_from(request.headers.get(REQUEST_ID))
    request[REQUEST_ID_KEY] = rid
    token = log_format.request_id.set(rid)
    start, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        access_log.info(
            "%s %s %s %.1f ms",
            request.method,
            request.rel_url.raw_path,
            status,
            1000 * (time.perf_counter() - start),
        )
        log_format.request_id.reset(token)


async def secure_response(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Every response the application sends: the security headers, a neutral Server header, its id.

    A signal, not a middleware: it also runs for the responses aiohttp makes itself (404,
    405, an ``HTTPException``, the 500 of a handler that raised), just before the headers go.
    """
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER_NAME
    rid = request.get(REQUEST_ID_KEY)
    if rid is not None:
        response.headers[REQUEST_ID] = rid


def build_app(
    settings: Settings, db: Database, services: Services | None = None
) -> web.Application:
    """The whole HTTPS application with every part that is installed."""
    app = web.Application(
        client_max_size=settings.limits.max_message_size, middlewares=[tag_request]
    )
    app[SETTINGS] = settings
    app[DB] = db
    app[SERVICES] = services if services is not None else Services(settings)
    app.on_response_prepare.append(secure_response)
    for name in PARTS:
        importlib.import_module(name).setup(app)
    return app


class ImplicitTlsSite(web.BaseSite):
    """``web.TCPSite`` for HTTPS whose TLS context is taken per connection (``ImplicitTls``).

    ``TCPSite(ssl_context=...)`` keeps one context, hence one set of session-ticket keys, for
    the listener's life; here they rotate with ``contexts``. Requests see the same transport
    as under ``TCPSite`` (``peercert``, ``ssl_object``, ``sslcontext``: client certificates of
    the document API, ``request.secure``). With ``reuse_port`` other processes listen on the
    same port (SO_REUSEPORT: ``[listeners] https_processes``).
    """

    __slots__ = (
        "_host",
        "_port",
        "_bound_port",
        "_contexts",
        "_reuse_address",
        "_reuse_port",
        "_acceptor",
    )

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        contexts: RotatingServerContext,
        *,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._bound_port: int | None = None
        self._contexts = contexts
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port
        self._acceptor: ImplicitTls | None = None

    @property
    def name(self) -> str:
        return f"https://{self._host or '0.0.0.0'}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the one asked for before ``start``; 0 picks a free one)."""
        return self._bound_port if self._bound_port is not None else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._acceptor = ImplicitTls(server, self._contexts, listener="HTTPS (portal and APIs)")
        listening = await asyncio.get_running_loop().create_server(
            self._acceptor,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._server = listening
        if listening.sockets:
            self._bound_port = int(listening.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
        await super().stop()
