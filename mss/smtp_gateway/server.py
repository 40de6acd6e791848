"""Starting the SMTP listeners: submission (STARTTLS and implicit TLS) and the operator relay."""

from __future__ import annotations

import asyncio

from mss.config import Settings
from mss.crypto.implicit_tls import ImplicitTls
from mss.crypto.tls import RotatingServerContext
from mss.db import Database
from mss.ports import port_error, refuse_if_listened
from mss.services import Services
from mss.smtp_gateway.handler import GatewayHandler
from mss.smtp_gateway.protocol import ConnectionLimiter, HubSMTP, Listener
from mss.smtp_gateway.stages import Gateway
from mss.smtp_gateway.tls import rotating_server_context

LISTENERS = (
    Listener("submission"),
    Listener("submission_tls", implicit_tls=True),
    Listener("smtp_relay"),
)
_IMPLICIT_NAMES = {"submission_tls": "SMTP submission (implicit TLS)"}  # for the handshake log


async def start_smtp_servers(
    settings: Settings,
    db: Database,
    services: Services,
    *,
    reuse_port: bool = False,
    joining: bool = False,
) -> list[asyncio.Server]:
    """Listen on every SMTP port switched on in ``[listeners]`` (port 0 picks a free one).

    The bound ports are recorded in ``services.smtp_ports`` by listener name. With
    ``reuse_port`` other processes can listen on the same ports (SO_REUSEPORT, several
    SMTP processes); they then share ``services.connection_limiter``. The first of them
    refuses a port some other program already listens on, as without SO_REUSEPORT (a
    second ``mss serve`` would share it); ``joining``: the hub's first process holds them.
    Each listener's TLS contexts (``RotatingServerContext``, new ticket keys every
    ``[tls] ticket_key_hours``) are in ``services.tls_contexts``; every connection,
    STARTTLS or implicit TLS, takes the current one.
    """
    gateway = Gateway(settings, db, services)
    handler = GatewayHandler(gateway)
    limiter = services.connection_limiter or ConnectionLimiter(
        settings.limits.max_connections_per_ip
    )
    submission_tls = rotating_server_context(settings, gateway.trust, client_cert=True)
    relay_tls = rotating_server_context(settings, gateway.trust, client_cert=True)
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    ports = services.smtp_ports
    contexts = services.tls_contexts
    try:
        for listener in LISTENERS:
            if not getattr(settings.listeners, listener.name):
                continue
            context = relay_tls if listener.is_relay else submission_tls
            contexts[listener.name] = context

            def factory(
                listener: Listener = listener, context: RotatingServerContext = context
            ) -> HubSMTP:
                return HubSMTP(
                    handler,
                    listener=listener,
                    gateway=gateway,
                    limiter=limiter,
                    tls_context=context.current(),  # STARTTLS: this connection's context
                    loop=loop,
                )

            try:
                if reuse_port and not joining:
                    refuse_if_listened(settings.bind, getattr(settings.ports, listener.name))
                server = await loop.create_server(
                    ImplicitTls(factory, context, listener=_IMPLICIT_NAMES[listener.name])
                    if listener.implicit_tls
                    else factory,
                    host=settings.bind,
                    port=getattr(settings.ports, listener.name),
                    reuse_address=True,
                    reuse_port=reuse_port or None,
                )
            except OSError as exc:
                raise port_error(settings, listener.name, exc) from None
            servers.append(server)
            ports[listener.name] = server.sockets[0].getsockname()[1]
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers
