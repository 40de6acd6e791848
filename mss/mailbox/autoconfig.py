"""Thunderbird autoconfig: mail clients find the IMAP and submission servers from an address.

Served at ``/.well-known/autoconfig/mail/config-v1.1.xml`` and
``/mail/config-v1.1.xml`` (the autoconfig.<domain> form) on the HTTPS port.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from aiohttp import web

from mss.web import SETTINGS

PATHS = ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml")


def config_xml(
    hostname: str, domain: str, imaps: int, imap: int, submission_tls: int, submission: int
) -> str:
    """The clientConfig document (IMAP over TLS first, then STARTTLS; same for submission)."""
    host, dom = escape(hostname), escape(domain)

    def server(kind: str, protocol: str, port: int, socket: str) -> str:
        return (
            f'    <{kind} type="{protocol}">\n'
            f"      <hostname>{host}</hostname>\n      <port>{port}</port>\n"
            f"      <socketType>{socket}</socketType>\n      <username>%EMAILADDRESS%</username>\n"
            f"      <authentication>password-cleartext</authentication>\n    </{kind}>\n"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<clientConfig version="1.1">\n'
        f'  <emailProvider id="{dom}">\n    <domain>{dom}</domain>\n'
        f"    <displayName>Messagerie sécurisée de santé ({dom})</displayName>\n"
        f"    <displayShortName>MSS</displayShortName>\n"
        + server("incomingServer", "imap", imaps, "SSL")
        + server("incomingServer", "imap", imap, "STARTTLS")
        + server("outgoingServer", "smtp", submission_tls, "SSL")
        + server("outgoingServer", "smtp", submission, "STARTTLS")
        + "  </emailProvider>\n</clientConfig>\n"
    )


async def autoconfig(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    ports = settings.ports
    body = config_xml(
        settings.hostname,
        settings.domain,
        ports.imaps,
        ports.imap,
        ports.submission_tls,
        ports.submission,
    )
    return web.Response(
        text=body,
        content_type="application/xml",
        charset="utf-8",
        headers={"Cache-Control": "max-age=3600"},
    )


def setup(app: web.Application) -> None:
    """Add the autoconfig routes to the hub's HTTPS application."""
    for path in PATHS:
        app.router.add_get(path, autoconfig)
