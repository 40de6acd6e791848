"""Connected services through the FHIR document API with a bearer token: the service rows of the
role x action table (zero leaks), and the strict reading of the Observations they write."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from sqlalchemy import select

from mss.audit import AuditEvent
from mss.catalogue.models import Measurement
from portal.history import read_history
from tests.dmp.conftest import GUARDIAN_INS, Api
from tests.dmp.matrix import DOCUMENTS, SERVICE_VISIBLE, SERVICE_WRITES, SERVICES
from tests.dmp.service_tokens import issue_tokens
from tests.dmp.test_api_matrix import SEARCH, outcome, provide_bundle
from tests.xdm_factory import INS


async def _bearer(api: Api, name: str) -> dict[str, str]:
    who, scopes = SERVICES[name]
    world = api.world
    person = world.patient if who == "patient" else world.guardian
    tokens = await issue_tokens(world.db, name.replace("_", "-"), world.patient, person, scopes)
    assert tokens["patient"] == INS
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def weight(value: Any = 31.5, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": INS}},
        "effectiveDateTime": "2026-03-01T08:30:00+01:00",
        "valueQuantity": {
            "value": value,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
    }
    for key, changed in changes.items():
        if changed is None:
            body.pop(key, None)
        else:
            body[key] = changed
    return body


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_service_matrix_through_the_api(api: Api, name: str) -> None:
    headers = await _bearer(api, name)
    names = {str(v): k for k, v in api.world.documents.items()}
    visible = SERVICE_VISIBLE[name]

    status, body, answered = await api.call("GET", SEARCH, headers=headers)
    if visible is None:
        assert status == 403 and b"Compte rendu" not in body
        assert 'error="insufficient_scope"' in answered["WWW-Authenticate"]
    else:
        assert status == 200, body
        bundle = json.loads(body)
        Bundle.model_validate(bundle)
        assert {names[e["resource"]["id"]] for e in bundle.get("entry", [])} == visible
        for hidden in set(DOCUMENTS) - visible:
            assert f"Compte rendu {hidden}".encode() not in body

    absent = await api.call("GET", "/fhir/Binary/999999", headers=headers)
    for document in DOCUMENTS:
        ident = api.world.documents[document]
        for path in (f"/fhir/Binary/{ident}", f"/fhir/DocumentReference/{ident}"):
            status, body, _ = await api.call("GET", path, headers=headers)
            if visible is not None and document in visible:
                assert status == 200, (name, document, body)
            else:  # the very answer of a document that does not exist
                assert (status, outcome(body)) == (404, outcome(absent[1])), (name, document)
                assert b"ClinicalDocument" not in body and document.encode() not in body

    # The token is bound to its space: another patient's record is not searched.
    other = SEARCH.replace(INS, GUARDIAN_INS)
    status, body, _ = await api.call("GET", other, headers=headers)
    assert status == 403 and "another patient" in outcome(body)
    # A service never deposits: the provide transaction is for professionals.
    status, body, _ = await api.call(
        "POST", "/fhir", headers=headers, json=provide_bundle(unique="7777")
    )
    assert status == 401
    status, body, _ = await api.call("POST", "/fhir/Observation", headers=headers, json=weight())
    if SERVICE_WRITES[name]:
        assert status == 201, body
        Observation.model_validate(json.loads(body))
    else:
        assert status == 403 and "autorisation" in outcome(body)


async def test_every_use_is_in_the_history_with_the_services_name(api: Api) -> None:
    headers = await _bearer(api, "service_of_guardian")
    plain = api.world.documents["plain"]
    assert (await api.call("GET", SEARCH, headers=headers))[0] == 200
    assert (await api.call("GET", f"/fhir/Binary/{plain}", headers=headers))[0] == 200
    masked = api.world.documents["masked"]
    assert (await api.call("GET", f"/fhir/Binary/{masked}", headers=headers))[0] == 404
    assert (await api.call("POST", "/fhir/Observation", headers=headers, json=weight()))[0] == 201
    async with api.world.db.read() as session:
        lines = await read_history(session, api.world.patient.id)
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.actor_kind == "service"))
        ).all()
    said = {(line.what, line.who) for line in lines}
    who = "Service service-of-guardian (service connecté)"
    for what in (
        "Liste des documents consultée par un service connecté",
        "Document lu par un service connecté",
        "Accès refusé à un service connecté",
        "Mesure enregistrée par un service connecté",
    ):
        assert (what, who) in said
    assert ("Service connecté à l'espace", "Paul NESSI (représentant légal)") in said
    assert {e.source for e in events} == {"service"}
    assert all(e.actor == "service-of-guardian" for e in events)


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({"resourceType": "Patient"}, "resourceType must be Observation"),
        (weight(note=[{"text": "x"}]), "not accepted here: note"),
        (weight(status="cancelled"), "status must be one of"),
        (weight(status=None), "status must be one of"),
        (weight(code={"coding": [{"system": "urn:oid:1.2", "code": "29463-7"}]}), "system must"),
        (weight(code={"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}), "8867-4"),
        (weight(code={"coding": []}), "exactly one LOINC coding"),
        (weight(value="72"), "value must be a number"),
        (weight(value=True), "value must be a number"),
        (weight(value=1e9), "outside 0.3-400.0"),
        (weight(value=-2), "outside"),
        (
            weight(
                valueQuantity={
                    "value": 72,
                    "unit": "lb",
                    "system": "http://unitsofmeasure.org",
                    "code": "[lb_av]",
                }
            ),
            "must be in kg",
        ),
        (weight(effectiveDateTime="2026-03-01"), "time and its offset"),
        (weight(effectiveDateTime="2026-03-01T08:30:00"), "time and its offset"),
        (weight(effectiveDateTime="hier"), "FHIR dateTime"),
        (weight(effectiveDateTime="2999-01-01T00:00:00+00:00"), "in the future"),
        (weight(subject={"reference": "Patient/1"}), "subject.identifier must be"),
        (weight(category={"text": "x"}), "category must be a list"),
        ([], "the body must be a JSON object"),
    ],
)
async def test_observations_are_read_strictly(api: Api, body: Any, sentence: str) -> None:
    headers = await _bearer(api, "service_of_guardian")
    status, answer, _ = await api.call("POST", "/fhir/Observation", headers=headers, json=body)
    assert status == 422 and sentence in outcome(answer), answer
    async with api.world.db.read() as session:
        assert (await session.scalars(select(Measurement))).all() == []


async def test_observation_body_and_subject_refusals(api: Api) -> None:
    headers = await _bearer(api, "service_of_guardian")
    for data in (b"{not json", b"[" * 100 + b"]" * 100):
        status, answer, _ = await api.call("POST", "/fhir/Observation", headers=headers, data=data)
        assert status == 400 and outcome(answer)
    other = weight(
        subject={"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": GUARDIAN_INS}}
    )
    status, answer, _ = await api.call("POST", "/fhir/Observation", headers=headers, json=other)
    assert status == 403 and "another patient" in outcome(answer)
    glucose = weight(
        code={"coding": [{"system": "http://loinc.org", "code": "15074-8"}]},
        valueQuantity={
            "value": 5.4,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    )
    status, answer, answered = await api.call(
        "POST", "/fhir/Observation", headers=headers, json=glucose
    )
    assert status == 201, answer
    created = json.loads(answer)
    Observation.model_validate(created)
    assert answered["Location"].endswith(f"/fhir/Observation/{created['id']}")
    async with api.world.db.read() as session:
        (stored,) = (await session.scalars(select(Measurement))).all()
    assert (stored.code, stored.value, stored.unit, stored.patient_id) == (
        "15074-8",
        5.4,
        "mmol/L",
        api.world.patient.id,
    )
    assert stored.effective_at == dt.datetime(2026, 3, 1, 7, 30, tzinfo=dt.UTC)


async def test_withdrawn_service_and_ended_guardianship_close_every_door(api: Api) -> None:
    from sqlalchemy import delete

    from mss.catalogue.store import set_status
    from mss.directory.models import Guardianship

    of_guardian = await _bearer(api, "service_of_guardian")
    of_patient = await _bearer(api, "service_of_patient")
    plain = api.world.documents["plain"]
    async with api.world.db.write() as session:
        await session.execute(delete(Guardianship))  # the guardian no longer acts for Ruth
    status, body, _ = await api.call("GET", f"/fhir/Binary/{plain}", headers=of_guardian)
    assert status == 404 and b"ClinicalDocument" not in body
    status, body, _ = await api.call("GET", SEARCH, headers=of_guardian)
    assert status == 403 and "not a legal representative" in outcome(body)
    status, _b, _ = await api.call("POST", "/fhir/Observation", headers=of_guardian, json=weight())
    assert status == 403
    assert (await api.call("GET", SEARCH, headers=of_patient))[0] == 200
    async with api.world.db.write() as session:
        await set_status(session, "service-of-patient", "withdrawn")
    status, body, answered = await api.call("GET", SEARCH, headers=of_patient)
    assert status == 401 and 'error="invalid_token"' in answered["WWW-Authenticate"]
