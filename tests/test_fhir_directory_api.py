"""The FHIR directory API on a real aiohttp server: searches, reads, red list, refusals.

Every answer is validated with fhir.resources (R4B).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole

from mss.config import Settings
from mss.db import Database
from mss.directory import fhir_api
from mss.directory.fhir_mailbox import read_mailboxes
from mss.directory.import_fhir import import_fhir
from mss.web import DB, SETTINGS
from tests.fhir_directory_samples import (
    ANNUAIRE,
    API_MSS,
    bundle,
    hospital_bundle,
    sample,
    write_json,
)

CLASSES = {
    "Practitioner": Practitioner,
    "PractitionerRole": PractitionerRole,
    "Organization": Organization,
}


@pytest.fixture
async def client(
    db: Database, settings: Settings, ans_data: Path, tmp_path: Path
) -> AsyncIterator[TestClient]:
    everything = bundle(
        sample(ans_data, ANNUAIRE),
        sample(ans_data, API_MSS),
        *[entry["resource"] for entry in hospital_bundle()["entry"]],
    )
    async with db.write() as session:
        await import_fhir(session, write_json(tmp_path / "directory.json", everything))
    app = web.Application()
    settings.portal.public_url = "https://annuaire.hub.example"
    app[DB], app[SETTINGS] = db, settings
    fhir_api.setup(app)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        yield test_client


async def _bundle(client: TestClient, url: str) -> list[dict[str, Any]]:
    """GET a search, check it is a valid searchset Bundle, return its resources."""
    response = await client.get(url)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/fhir+json"
    body = await response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset" and body["total"] == len(body.get("entry", []))
    resources = [entry["resource"] for entry in body.get("entry", [])]
    for resource in resources:
        CLASSES[resource["resourceType"]].model_validate(resource)
    return resources


async def _refused(client: TestClient, url: str, status: int) -> str:
    response = await client.get(url)
    assert response.status == status
    body = await response.json()
    OperationOutcome.model_validate(body)
    diagnostics: str = body["issue"][0]["diagnostics"]
    return diagnostics


def _addresses(resource: dict[str, Any]) -> list[str]:
    return [telecom["value"] for telecom in resource.get("telecom", [])]


async def test_practitioner_by_identifier_with_mailbox_not_ordinary_email(
    client: TestClient,
) -> None:
    for query in (
        "identifier=urn:oid:1.2.250.1.71.4.2.1|810102727017",
        "identifier=810102727017",
        "identifier=https://rpps.esante.gouv.fr|10102727017",
        "identifier=10102727017",
    ):
        [found] = await _bundle(client, f"/fhir/Practitioner?{query}")
        assert found["name"][0]["family"] == "CHATELIER"
    assert _addresses(found) == ["davidchatelier@pro.mssante.fr"]  # not davidchatelier@orange.fr
    assert found["qualification"][0]["code"]["coding"][0]["code"] == "21"
    # The published telecom carries the same extensions the import reads.
    [box] = read_mailboxes(found)
    assert (box.address, box.kind.value if box.kind else None, box.red_list) == (
        "davidchatelier@pro.mssante.fr",
        "PER",
        False,
    )
    assert await _bundle(client, "/fhir/Practitioner?identifier=http://other|810102727017") == []


async def test_practitioner_by_name(client: TestClient) -> None:
    found = await _bundle(client, "/fhir/Practitioner?name=dup")
    assert [p["name"][0]["family"] for p in found] == ["DUPONT"]
    assert _addresses(found[0]) == ["jean-marie.dupont@infirmier.mssante.fr"]
    assert [
        p["name"][0]["family"] for p in await _bundle(client, "/fhir/Practitioner?name=marie")
    ] == ["DUPONT"]  # Jean-Marie
    assert await _bundle(client, "/fhir/Practitioner?name=%25") == []


async def test_practitioner_role_by_mailbox(client: TestClient) -> None:
    [role] = await _bundle(
        client, "/fhir/PractitionerRole?mailbox-mss=Claire.Martin@hopital-fictif.mssante.fr"
    )
    assert role["practitioner"]["display"] == "Claire MARTIN"
    assert role["organization"]["display"] == "Hôpital Fictif"
    assert role["code"][0]["coding"][0]["code"] == "10"
    assert _addresses(role) == ["claire.martin@hopital-fictif.mssante.fr"]
    practitioner = await client.get(f"/fhir/{role['practitioner']['reference']}")
    Practitioner.model_validate(await practitioner.json())
    organisation = await client.get(f"/fhir/{role['organization']['reference']}")
    assert (await organisation.json())["name"] == "Hôpital Fictif"


async def test_red_listed_mailboxes_are_never_published(client: TestClient) -> None:
    hidden = ("paul.durand@hopital-fictif.mssante.fr", "direction@hopital-fictif.mssante.fr")
    for address in hidden:
        for kind in ("PractitionerRole", "Practitioner", "Organization"):
            assert await _bundle(client, f"/fhir/{kind}?mailbox-mss={address}") == []
    [durand] = await _bundle(client, "/fhir/Practitioner?identifier=899700367909")
    assert "telecom" not in durand
    [hospital] = await _bundle(client, "/fhir/Organization?identifier=750712184")
    assert _addresses(hospital) == [
        "cardiologie@hopital-fictif.mssante.fr",
        "convocations@hopital-fictif.mssante.fr",
    ]
    response = await client.get(f"/fhir/Organization/{hospital['id']}")
    text = await response.text()
    assert response.status == 200 and all(address not in text for address in hidden)


async def test_organization_by_identifier_and_read(client: TestClient) -> None:
    for query in (
        "https://finess.esante.gouv.fr|130786049",
        "130786049",
        "urn:oid:1.2.250.1.71.4.2.2|1130786049",
    ):
        [pharmacy] = await _bundle(client, f"/fhir/Organization?identifier={query}")
        assert pharmacy["name"] == "Pharmacie du Port"
    [box] = read_mailboxes(pharmacy)
    assert box.kind is not None and box.kind.value == "ORG"
    response = await client.get(f"/fhir/Organization/{pharmacy['id']}")
    assert response.status == 200 and response.content_type == "application/fhir+json"
    assert Organization.model_validate(await response.json()).name == "Pharmacie du Port"
    [found] = await _bundle(
        client, "/fhir/Organization?mailbox-mss=pharmacie@pharmacie-du-port.mssante.fr"
    )
    assert found["id"] == pharmacy["id"]


async def test_refusals_are_operation_outcomes(client: TestClient) -> None:
    assert (
        "search parameter 'family' is not supported for Practitioner; use name, identifier"
        in await _refused(client, "/fhir/Practitioner?family=DUPONT", 400)
    )
    assert "'name' is not supported for PractitionerRole" in await _refused(
        client, "/fhir/PractitionerRole?name=x", 400
    )
    assert "give at least one search parameter" in await _refused(client, "/fhir/Organization", 400)
    assert "give search parameter 'name' once" in await _refused(
        client, "/fhir/Practitioner?name=a&name=b", 400
    )
    assert "Practitioner/999999 does not exist" in await _refused(
        client, "/fhir/Practitioner/999999", 404
    )
    assert "does not exist" in await _refused(client, "/fhir/Practitioner/abc", 404)
    assert "/fhir/Patient is not served here" in await _refused(client, "/fhir/Patient?name=x", 404)
    response = await client.post("/fhir/Practitioner", json={})
    assert response.status == 405
    OperationOutcome.model_validate(await response.json())


async def test_links_are_the_public_address_whatever_the_host_header(client: TestClient) -> None:
    response = await client.get(
        "/fhir/Practitioner?identifier=810102727017", headers={"Host": "evil.example"}
    )
    body = await response.json()
    assert "evil.example" not in await response.text()
    assert (
        body["link"][0]["url"]
        == "https://annuaire.hub.example/fhir/Practitioner?identifier=810102727017"
    )
    assert [e["fullUrl"].rsplit("/", 1)[0] for e in body["entry"]] == [
        "https://annuaire.hub.example/fhir/Practitioner"
    ]
