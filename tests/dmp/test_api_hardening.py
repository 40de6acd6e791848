"""The document API under attack: stored scripts, mis-coded labels, deep JSON, id probing, forged
Host.

Everything runs over real TLS on loopback; the stored-script test opens the
document in Debian's Chromium with the doctor's credentials.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import urllib.parse
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright
from sqlalchemy import func, select

from dmp_bridge.documents import DocumentDraft, insert_document
from dmp_bridge.models import DmpDocument
from mss.bounded_json import MAX_JSON_DEPTH
from mss.config import Settings
from mss.db import Database
from mss.http import PARTS
from mss.policy.dmp_metadata import DMP_FORMATS
from mss.services import Services
from mss.web import DB, SERVICES, SETTINGS
from tests.dmp.conftest import PASSWORD, Api, World
from tests.dmp.matrix import ID_NATS, REASON
from tests.dmp.test_api_matrix import SEARCH, outcome, provide_bundle
from tests.portal.test_browser import CHROMIUM_ARGS

SANDBOX_CSP = "default-src 'none'; sandbox"
SCRIPTS = {
    "text/html": b"<!doctype html><title>CR</title><script>document.title = 'script ran';"
    b"fetch('/fhir/Binary/script-ran')</script><p>Compte rendu</p>",
    "image/svg+xml": b'<svg xmlns="http://www.w3.org/2000/svg"><script>'
    b"fetch('/fhir/Binary/script-ran')</script></svg>",
    "application/javascript": b"fetch('/fhir/Binary/script-ran')",
}


async def _legacy(
    world: World, mime_type: str, content: bytes, title: str = 'Compte "rendu"/../<b>évalué</b>'
) -> int:
    """A document stored before deposits were checked (the store itself checks nothing)."""
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        document = await insert_document(
            session,
            patient,
            DocumentDraft(
                content=content,
                mime_type=mime_type,
                title=title,
                author_id_nat=ID_NATS["author"],
                author_name="Dr AUTHOR",
            ),
        )
        return document.id


async def _stored(world: World) -> int:
    async with world.db.read() as session:
        return int(
            (await session.execute(select(func.count()).select_from(DmpDocument))).scalar_one()
        )


# Finding 1: a deposited document never runs as a page of the hub's origin.


@pytest.mark.parametrize("mime_type", sorted(SCRIPTS))
async def test_a_stored_script_type_is_served_as_a_sandboxed_download(
    api: Api, mime_type: str
) -> None:
    document_id = await _legacy(api.world, mime_type, SCRIPTS[mime_type])
    status, body, headers = await api.call("GET", f"/fhir/Binary/{document_id}", role="treating")
    assert (status, body) == (200, SCRIPTS[mime_type])
    assert headers["Content-Type"] == "application/octet-stream"  # not a type the DMP holds
    disposition = headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Compte-rendu-..-b-evalue-b.bin"; ')
    assert (
        urllib.parse.unquote(disposition.split("''", 1)[1]) == "Compte -rendu-..-<b>évalué<-b>.bin"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == SANDBOX_CSP


async def test_an_accepted_type_keeps_its_type_and_is_still_a_download(api: Api) -> None:
    plain = api.world.documents["plain"]
    status, _body, headers = await api.call("GET", f"/fhir/Binary/{plain}", role="treating")
    assert (status, headers["Content-Type"]) == (200, "text/xml")
    assert headers["Content-Disposition"].startswith(
        'attachment; filename="Compte-rendu-plain.xml"'
    )
    assert headers["Content-Security-Policy"] == SANDBOX_CSP
    status, _body, headers = await api.call("GET", f"/fhir/Binary/{plain}-pdf", role="treating")
    assert headers["Content-Disposition"].startswith(
        'attachment; filename="Compte-rendu-plain.pdf"'
    )


@pytest.mark.browser
@pytest.mark.parametrize("mime_type", ["text/html", "image/svg+xml"])
async def test_chromium_downloads_a_stored_script_and_runs_none_of_it(
    api: Api, mime_type: str
) -> None:
    document_id = await _legacy(api.world, mime_type, SCRIPTS[mime_type], title="Compte rendu")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = await browser.new_context(
            ignore_https_errors=True,
            accept_downloads=True,
            http_credentials={"username": "treating@mss.localhost", "password": PASSWORD},
        )
        requested: list[str] = []
        context.on("request", lambda r: requested.append(r.url))
        page = await context.new_page()
        try:
            async with page.expect_download(timeout=15_000) as started:
                with contextlib.suppress(PlaywrightError):  # "Download is starting"
                    await page.goto(f"{api.url}/fhir/Binary/{document_id}")
            download = await started.value
            assert download.suggested_filename == "Compte rendu.bin"
            assert await download.failure() is None
            saved = Path(await download.path())
            assert saved.read_bytes() == SCRIPTS[mime_type]  # the doctor got the file, untouched
            assert await page.title() != "script ran"
        finally:
            await context.close()
            await browser.close()
    assert not any("script-ran" in url for url in requested), requested


@pytest.mark.parametrize(
    "mime_type",
    [
        "text/html",
        "image/svg+xml",
        "application/javascript",
        "application/octet-stream",
        "application/x-sh",
    ],
)
async def test_deposit_refuses_a_type_the_dmp_does_not_hold(api: Api, mime_type: str) -> None:
    before = await _stored(api.world)
    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role="authorised",
        json=provide_bundle(
            content=SCRIPTS.get(mime_type, b"x"), content_type=mime_type, unique="9100"
        ),
    )
    assert status == 422
    text = outcome(body)
    assert (
        "does not hold" in text
        and "application/pdf, image/jpeg" in text
        and "application/dicom" in text
    )
    assert await _stored(api.world) == before


@pytest.mark.parametrize(
    "mime_type", ["text/plain; charset=utf-8", "application/dicom", "image/tiff"]
)
async def test_deposit_takes_the_formats_of_the_dmp(api: Api, mime_type: str) -> None:
    assert mime_type.split(";")[0] in DMP_FORMATS
    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role="authorised",
        json=provide_bundle(content=b"II*\x00 bytes", content_type=mime_type, unique="9200"),
    )
    assert status == 200, body


# Finding 6: a confidentiality code the API cannot read is refused, never dropped.


def _labelled(system: str, code: str) -> dict[str, object]:
    bundle = provide_bundle(title="Annonce diagnostique", unique="9300")
    bundle["entry"][0]["resource"]["securityLabel"] = [
        {"coding": [{"system": system, "code": code}]}
    ]
    return bundle


@pytest.mark.parametrize(
    ("system", "code", "said"),
    [
        ("1.2.250.1.213.1.1.4.13", "INVISIBLE_PATIENT", "bare OID"),
        ("urn:oid:1.2.250.1.213.1.1.4.13", "INVISIBLE", "not a DMP visibility flag"),
        ("urn:oid:1.2.250.1.213.1.1.4.13", "invisible_patient", "not a DMP visibility flag"),
        ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R", "only the HL7 level N"),
        ("urn:oid:1.2.3.4", "INVISIBLE_PATIENT", "unknown"),
        ("", "INVISIBLE_PATIENT", "not one this server reads"),
    ],
)
async def test_an_unreadable_confidentiality_code_is_refused(
    api: Api, system: str, code: str, said: str
) -> None:
    before = await _stored(api.world)
    status, body, _ = await api.call(
        "POST", "/fhir", role="authorised", json=_labelled(system, code)
    )
    assert status == 422 and said in outcome(body), body
    assert await _stored(api.world) == before
    assert b"Annonce diagnostique" not in (await api.call("GET", SEARCH, role="treating"))[1]


async def test_readable_confidentiality_codes_are_kept(api: Api) -> None:
    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role="authorised",
        json=_labelled("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N"),
    )
    assert status == 200, body
    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role="authorised",
        json=provide_bundle(title="Cachée au patient", flags=("INVISIBLE_PATIENT",), unique="9400"),
    )
    assert status == 200, body
    new_id = int(json.loads(body)["entry"][0]["response"]["location"].split("/")[1])
    async with api.world.db.read() as session:
        document = await session.get(DmpDocument, new_id)
    assert document is not None and document.invisible_to_patient


# Finding 7: JSON nesting is bounded before parsing, on every JSON body the hub reads.

DEEP = b"[" * 100_000


async def test_deeply_nested_json_is_a_400_not_a_traceback(api: Api) -> None:
    for body in (DEEP, b'{"a":' * 5_000 + b"1" + b"}" * 5_000):
        status, answer, _ = await api.call(
            "POST",
            "/fhir",
            role="authorised",
            data=body,
            headers={"Content-Type": "application/fhir+json"},
        )
        assert status == 400 and f"deeper than {MAX_JSON_DEPTH} levels" in outcome(answer)
    bracket_text = provide_bundle(title="[" * 200 + "{" * 200, unique="9500")  # inside strings
    assert (await api.call("POST", "/fhir", role="authorised", json=bracket_text))[0] == 200


async def test_both_fhir_apis_answer_deep_json_with_an_outcome(
    db: Database, settings: Settings
) -> None:
    app = web.Application(client_max_size=settings.limits.max_message_size)
    app[DB], app[SETTINGS], app[SERVICES] = db, settings, Services(settings)
    for part in [p for p in PARTS if p in ("dmp_bridge.api", "mss.directory.fhir_api")]:
        importlib.import_module(part).setup(
            app
        )  # the document API, then the directory, in the hub's order
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        for path, status in (("/fhir", 400), ("/fhir/", 400), ("/fhir/Practitioner", 405)):
            response = await client.post(
                path, data=DEEP, headers={"Content-Type": "application/fhir+json"}
            )
            assert response.status == status, path
            assert outcome(await response.read())


# Finding 11: probing ids tells nothing about which exist.


@pytest.mark.parametrize("role", ["unauthorised", "blocked"])
async def test_a_closed_record_answers_like_a_missing_document(api: Api, role: str) -> None:
    plain = api.world.documents["plain"]
    for kind in ("Binary", "DocumentReference"):
        existing = await api.call("GET", f"/fhir/{kind}/{plain}", role=role)
        missing = await api.call("GET", f"/fhir/{kind}/999999", role=role)
        assert existing[:2] == missing[:2]
        assert existing[0] == 404


async def test_a_bad_break_glass_reason_is_judged_before_the_id(api: Api) -> None:
    plain = api.world.documents["plain"]
    existing = await api.call("GET", f"/fhir/Binary/{plain}", role="break_glass", reason="urgence")
    missing = await api.call("GET", "/fhir/Binary/999999", role="break_glass", reason="urgence")
    assert (
        existing[:2] == missing[:2] and existing[0] == 422 and "too short" in outcome(existing[1])
    )
    reason = urllib.parse.quote(REASON)
    assert (await api.call("GET", f"/fhir/Binary/{plain}", role="break_glass", reason=reason))[
        0
    ] == 200


# Finding 12: links are the hub's public address, whatever Host the client sends.


async def test_links_ignore_a_forged_host_header(api: Api) -> None:
    api.world.settings.portal.public_url = "https://dmp.hub.example/"
    forged = {"Host": "evil.example"}
    status, body, _ = await api.call("GET", SEARCH, role="treating", headers=forged)
    assert status == 200 and b"evil.example" not in body
    bundle = json.loads(body)
    assert urllib.parse.unquote(bundle["link"][0]["url"]) == f"https://dmp.hub.example{SEARCH}"
    urls = [e["fullUrl"] for e in bundle["entry"]] + [
        c["attachment"]["url"] for e in bundle["entry"] for c in e["resource"]["content"]
    ]
    assert urls and all(u.startswith("https://dmp.hub.example/fhir/") for u in urls)
    plain = api.world.documents["plain"]
    status, body, _ = await api.call(
        "GET", f"/fhir/DocumentReference/{plain}", role="treating", headers=forged
    )
    assert json.loads(body)["content"][0]["attachment"]["url"] == (
        f"https://dmp.hub.example/fhir/Binary/{plain}"
    )
