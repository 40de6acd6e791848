"""Listening ports by name, and the one sentence a port that cannot be bound gets.

Shared by ``mss serve`` and the listeners it starts (SMTP, IMAP, HTTPS), and by ``mss doctor``.
"""

from __future__ import annotations

import errno
import socket

from mss.config import Settings
from mss.errors import HubError

PORT_NAMES = {
    "smtp_relay": "SMTP relay (operators, mutual TLS)",
    "submission": "SMTP submission (STARTTLS)",
    "submission_tls": "SMTP submission (implicit TLS)",
    "imap": "IMAP (STARTTLS)",
    "imaps": "IMAP (implicit TLS)",
    "https": "HTTPS (portal and APIs)",
}


class PortInUse(HubError):
    exit_code = 4


def port_error(settings: Settings, port_key: str, exc: OSError) -> HubError:
    port = getattr(settings.ports, port_key)
    what = PORT_NAMES.get(port_key, port_key)
    if exc.errno == errno.EADDRINUSE:
        return PortInUse(
            f"port {port} for {what} is already in use on {settings.bind}: "
            f"stop the other program or set ports.{port_key} in mss.toml"
        )
    if exc.errno == errno.EACCES:
        return PortInUse(
            f"port {port} for {what} needs privileges on {settings.bind}: choose a port above 1024"
        )
    return PortInUse(f"cannot listen on {settings.bind}:{port} for {what}: {exc.strerror or exc}")


def refuse_if_listened(host: str, port: int) -> None:
    """OSError (address in use) when another socket listens on ``host:port``: a plain bind
    (SO_REUSEADDR, as asyncio's) cannot share a port that a listener holds."""
    if not port:
        return  # a free port is picked
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)
