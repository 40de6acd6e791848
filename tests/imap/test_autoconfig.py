"""Thunderbird autoconfig XML on both paths, with the configured host and ports."""

from __future__ import annotations

import defusedxml.ElementTree as ET
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mss.config import Settings
from mss.mailbox import autoconfig
from mss.web import SETTINGS


async def test_autoconfig_lists_imap_and_submission() -> None:
    settings = Settings(hostname="mss.example.fr", domain="example.fr")
    app = web.Application()
    app[SETTINGS] = settings
    autoconfig.setup(app)
    async with TestClient(TestServer(app)) as client:
        for path in autoconfig.PATHS:
            response = await client.get(path, params={"emailaddress": "jean.dupont@example.fr"})
            assert response.status == 200 and response.content_type == "application/xml"
            root = ET.fromstring(await response.text())
            servers = [
                (
                    s.tag,
                    s.get("type"),
                    s.findtext("hostname"),
                    s.findtext("port"),
                    s.findtext("socketType"),
                    s.findtext("username"),
                )
                for s in root.find("emailProvider")
                if s.tag.endswith("Server")
            ]
            assert servers == [
                ("incomingServer", "imap", "mss.example.fr", "2993", "SSL", "%EMAILADDRESS%"),
                ("incomingServer", "imap", "mss.example.fr", "2143", "STARTTLS", "%EMAILADDRESS%"),
                ("outgoingServer", "smtp", "mss.example.fr", "2465", "SSL", "%EMAILADDRESS%"),
                ("outgoingServer", "smtp", "mss.example.fr", "2587", "STARTTLS", "%EMAILADDRESS%"),
            ]
            assert root.find("emailProvider").findtext("domain") == "example.fr"
