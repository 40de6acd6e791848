"""The MHD API beyond the matrix: authentication, break-glass, versions, retrieval forms, audit."""

from __future__ import annotations

import json
import logging
import urllib.parse

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.documentreference import DocumentReference
from sqlalchemy import select

from dmp_bridge.emergency import NOTIFY_TREATING_JOB
from mss.audit import AuditEvent
from mss.config import Settings
from mss.db import Database
from mss.directory.models import Patient
from mss.http import build_app
from mss.jobs import Job, JobRunner
from mss.notify import read_outbox, register_jobs
from mss.services import Services
from portal.history import read_history
from tests.dmp.conftest import PASSWORD, Api
from tests.dmp.matrix import REASON
from tests.dmp.test_api_matrix import SEARCH, outcome, provide_bundle
from tests.fixtures_pki import DevPki
from tests.xdm_factory import INS


async def test_without_credentials_401_with_a_challenge(api: Api) -> None:
    status, body, headers = await api.call("GET", SEARCH)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert "client certificate" in outcome(body)
    status, body, _ = await api.call(
        "GET", SEARCH, basic=f"authorised@mss.localhost:wrong{PASSWORD}"
    )
    assert (status, outcome(body)) == (401, "wrong mailbox address or password")


async def test_mailbox_password_identifies_the_professional(api: Api) -> None:
    status, body, _ = await api.call("GET", SEARCH, basic=f"authorised@mss.localhost:{PASSWORD}")
    assert status == 200
    assert json.loads(body)["total"] == 3
    status, body, _ = await api.call("GET", SEARCH, basic=f"unauthorised@mss.localhost:{PASSWORD}")
    assert status == 403 and "not authorised" in outcome(body)


async def test_untrusted_or_anonymous_certificates(
    api: Api, untrusted_pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    rogue = untrusted_pki.issue_smime(
        "authorised@mss.localhost",
        id_nat="810000000011",
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        label="rogue-dmp",
    )
    # The handshake lets the certificate through; the API answers with the reason and logs it,
    # rather than closing the connection (curl's "Empty reply from server").
    with caplog.at_level(logging.WARNING, logger="dmp_bridge.api_auth"):
        status, body, headers = await api.call("GET", SEARCH, identity=rogue)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert outcome(body).startswith("client certificate refused: ")
    assert "810000000011" in caplog.text and "refused" in caplog.text
    # A certificate without idNat (an applicative mailbox) names no professional.
    app_cert = api.pki.issue_smime(
        "convocations@mss.localhost", eku=[ExtendedKeyUsageOID.CLIENT_AUTH], label="dmp-app-client"
    )
    status, body, _ = await api.call("GET", SEARCH, identity=app_cert)
    assert status == 403 and "no idNat" in outcome(body)


async def test_search_parameters(api: Api) -> None:
    status, body, _ = await api.call("GET", SEARCH + "&_sort=date", role="authorised")
    assert status == 400 and "_sort" in outcome(body)
    status, body, _ = await api.call(
        "GET", f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.3|{INS}", role="authorised"
    )
    assert status == 400
    test_oid = f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.10|{INS}"
    assert (await api.call("GET", test_oid, role="authorised"))[0] == 200
    unknown = (
        "/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|199999999999999"
    )
    status, body, _ = await api.call("GET", unknown, role="authorised")
    assert status == 404 and "no medical record" in outcome(body)


async def test_read_reference_binary_json_and_pdf(api: Api) -> None:
    plain = api.world.documents["plain"]
    status, body, _ = await api.call("GET", f"/fhir/DocumentReference/{plain}", role="treating")
    reference = json.loads(body)
    DocumentReference.model_validate(reference)
    assert reference["subject"]["identifier"]["value"] == INS
    assert reference["author"][0]["identifier"]["value"] == "810000000016"
    assert [c["attachment"]["url"].rsplit("/", 1)[1] for c in reference["content"]] == [
        str(plain),
        f"{plain}-pdf",
    ]
    status, body, headers = await api.call("GET", f"/fhir/Binary/{plain}-pdf", role="treating")
    assert (status, headers["Content-Type"], body) == (200, "application/pdf", b"%PDF-1.4 plain")
    status, body, _ = await api.call(
        "GET", f"/fhir/Binary/{plain}", role="treating", headers={"Accept": "application/fhir+json"}
    )
    Binary.model_validate(json.loads(body))
    assert json.loads(body)["contentType"] == "text/xml"
    masked = api.world.documents["masked"]
    assert (await api.call("GET", f"/fhir/DocumentReference/{masked}", role="authorised"))[0] == 404


async def test_author_replaces_then_versions_are_listed(api: Api) -> None:
    plain = api.world.documents["plain"]
    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role="author",
        json=provide_bundle(title="Compte rendu v2", replaces=plain, unique="2000"),
    )
    assert status == 200, body
    new_id = int(json.loads(body)["entry"][0]["response"]["location"].split("/")[1])
    status, body, _ = await api.call("GET", SEARCH + "&status=current,superseded", role="treating")
    entries = {e["resource"]["id"]: e["resource"] for e in json.loads(body)["entry"]}
    assert entries[str(plain)]["status"] == "superseded"
    assert (
        entries[str(new_id)]["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{plain}"
    )
    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role="author",
        json=provide_bundle(title="v3", replaces=plain, unique="3000"),
    )
    assert status == 422 and "latest version" in outcome(body)


async def test_deposit_flags_and_cda_checks(api: Api) -> None:
    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role="authorised",
        json=provide_bundle(title="Secret", flags=("MASQUE_PS",), unique="4000"),
    )
    assert status == 200
    assert b"Secret" in (await api.call("GET", SEARCH, role="authorised"))[1]  # its author
    assert b"Secret" in (await api.call("GET", SEARCH, role="treating"))[1]
    assert b"Secret" not in (await api.call("GET", SEARCH, role="break_glass", reason=REASON))[1]
    from tests.xdm_factory import make_cda

    wrong = make_cda(ins="147720425367411", doc_ext="5000")
    status, body, _ = await api.call(
        "POST", "/fhir", role="authorised", json=provide_bundle(content=wrong, unique="5000")
    )
    assert status == 422 and outcome(body).startswith("904")
    bad = provide_bundle(unique="6000", flags=("INVISIBLE_REP_LEGAUX",))
    status, body, _ = await api.call("POST", "/fhir", role="authorised", json=bad)
    assert status == 422 and "INVISIBLE_REP_LEGAUX" in outcome(body)
    status, body, _ = await api.call(
        "POST", "/fhir", role="authorised", json={"resourceType": "Patient"}
    )
    assert status == 422


async def test_break_glass_is_logged_and_notified_once(api: Api) -> None:
    status, body, _ = await api.call("GET", SEARCH, role="break_glass", reason="urgence")
    assert status == 422 and "too short" in outcome(body)
    encoded = urllib.parse.quote(REASON)
    for _ in range(2):
        assert (await api.call("GET", SEARCH, role="break_glass", reason=encoded))[0] == 200
    db = api.world.db
    async with db.read() as session:
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "emergency_access"))
        ).all()
        jobs = (await session.scalars(select(Job).order_by(Job.id))).all()
        history = await read_history(session, api.world.patient.id)
    assert [e.detail["reason"] for e in events] == [REASON, REASON]
    assert [j.kind for j in jobs].count(
        "notify.patient"
    ) == 0  # a minor: her guardian, who has no contact here
    assert [j.kind for j in jobs].count(NOTIFY_TREATING_JOB) == 1
    whats = [line.what for line in history]
    assert "Accès en urgence au dossier" in whats
    assert any(REASON in line.detail for line in history)


async def test_every_access_is_on_the_patients_history(api: Api) -> None:
    plain = api.world.documents["plain"]
    await api.call("GET", SEARCH, role="authorised")
    await api.call("GET", f"/fhir/Binary/{plain}", role="authorised")
    await api.call("GET", SEARCH, role="unauthorised")
    async with api.world.db.read() as session:
        history = await read_history(session, api.world.patient.id, limit=100)
    whats = [(line.what, line.who) for line in history[:3]]
    assert whats[0][0] == "Accès à un document refusé" and "UNAUTHORISED" in whats[0][1]
    assert whats[1][0] == "Document consulté" and "AUTHORISED" in whats[1][1]
    assert whats[2][0] == "Liste des documents du dossier consultée"


async def test_the_hub_routes_the_dmp_before_the_directory(
    db: Database, settings: Settings
) -> None:
    app = build_app(settings, db, Services(settings))
    # The routes a connected service shares are by_caller (a catalogue token goes to
    # service_api): documents, profile reads, agenda reads; dispensations and every write are
    # the professionals' alone.
    shared = (
        "/fhir/DocumentReference",
        "/fhir/Binary/1",
        "/fhir/AllergyIntolerance",
        "/fhir/MedicationStatement/1",
        "/fhir/Appointment",
        "/fhir/Appointment/1",
        f"/agenda/{INS}.ics",
    )
    for method, path in [("GET", p) for p in shared] + [
        ("GET", "/fhir/MedicationDispense"),
        ("POST", "/fhir/AllergyIntolerance"),
        ("POST", "/fhir/Appointment"),
    ]:
        request_match = await app.router.resolve(_request(app, path, method))
        wrapper = "by_caller" if method == "GET" and path in shared else "outcomes"
        assert request_match.handler.__qualname__.startswith(wrapper), path
        assert "dmp_bridge" in request_match.handler.__module__


def _request(app, path: str, method: str = "GET"):  # type: ignore[no-untyped-def]
    from aiohttp.test_utils import make_mocked_request

    return make_mocked_request(method, path, app=app)


async def test_break_glass_on_a_minor_is_told_to_the_guardian_not_the_minor(api: Api) -> None:
    world = api.world  # Ruth (born 2012, e-mail ruth@example.org) is a minor; Paul is her guardian
    async with world.db.write() as session:
        guardian = await session.get(Patient, world.guardian.id)
        assert guardian is not None
        guardian.email, guardian.phone = "paul.nessi@example.org", "+33698765432"
    status, _body, _ = await api.call(
        "GET", SEARCH, role="break_glass", reason=urllib.parse.quote(REASON)
    )
    assert status == 200
    runner = JobRunner(world.db, services=Services(world.settings))
    register_jobs(runner)
    await runner.drain()
    sent = read_outbox(world.settings)
    assert {(record["channel"], record["to"]) for record in sent} == {
        ("email", "paul.nessi@example.org"),
        ("sms", "+33698765432"),
    }
    assert all("enfant dont vous êtes le représentant légal" in record["text"] for record in sent)
    assert "ruth@example.org" not in {record["to"] for record in sent}
