"""Connected services through the FHIR document API with a bearer token: the service rows of the
role x action table (zero leaks) for documents, the profile and the agenda, and the strict
reading of the Observations they write."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from sqlalchemy import select

from mss.audit import AuditEvent
from mss.catalogue.models import Measurement, ServiceConnection
from mss.catalogue.store import revoke
from mss.db import utcnow
from mss.profile.store import add_item
from portal.history import read_history
from tests.dmp.agenda_world import AGENDA_SEARCH, CONVOCATION, FEED, OWN, fill_agenda
from tests.dmp.conftest import GUARDIAN_INS, Api
from tests.dmp.matrix import (
    DOCUMENTS,
    SERVICE_READS_AGENDA,
    SERVICE_READS_PROFILE,
    SERVICE_VISIBLE,
    SERVICE_WRITES,
    SERVICES,
)
from tests.dmp.service_tokens import issue_tokens
from tests.dmp.test_api_matrix import SEARCH, outcome, provide_bundle
from tests.dmp.test_clinical_api import ALLERGIES, TREATMENTS, allergy
from tests.xdm_factory import INS


async def _bearer(api: Api, name: str) -> dict[str, str]:
    who, scopes = SERVICES[name]
    world = api.world
    person = world.patient if who == "patient" else world.guardian
    tokens = await issue_tokens(world.db, name.replace("_", "-"), world.patient, person, scopes)
    assert tokens["patient"] == INS
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def fill_profile(api: Api) -> dict[str, int]:
    """An allergy and a treatment in the patient's profile, and an allergy in another space."""
    world = api.world
    async with world.db.write() as session:
        ids = {}
        for name, patient, category, label in (
            ("allergy", world.patient, "allergy", "Arachide"),
            ("treatment", world.patient, "treatment", "Ventoline"),
            ("elsewhere", world.guardian, "allergy", "Pénicilline"),
        ):
            item = await add_item(
                session,
                patient.id,
                category=category,
                label=label,
                author_kind="patient",
                author=patient.ins,
                author_name=patient.display_name,
                now=utcnow(),
            )
            ids[name] = item.id
    return ids


def scope_refused(status: int, answered: Any) -> bool:
    """403 with the RFC 6750 §3.1 challenge: the token stands, its scope is too narrow."""
    challenge = answered.get("WWW-Authenticate", "")
    return status == 403 and challenge == 'Bearer realm="MSS DMP", error="insufficient_scope"'


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


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_service_reads_the_profile_and_the_agenda_under_their_scopes(
    api: Api, name: str
) -> None:
    items = await fill_profile(api)
    appointments = await fill_agenda(api.world)  # not shared with any professional
    headers = await _bearer(api, name)
    other_ins = lambda path: path.replace(INS, GUARDIAN_INS)  # noqa: E731

    for path, present, absent in (
        (ALLERGIES, "Arachide", ("Ventoline", "Pénicilline")),
        (TREATMENTS, "Ventoline", ("Arachide", "Pénicilline")),
    ):
        status, body, answered = await api.call("GET", path, headers=headers)
        if SERVICE_READS_PROFILE[name]:
            assert status == 200, body
            bundle = json.loads(body)
            Bundle.model_validate(bundle)
            found = [
                (e["resource"].get("code") or e["resource"]["medicationCodeableConcept"])["text"]
                for e in bundle["entry"]
            ]
            assert found == [present]
        else:
            assert scope_refused(status, answered), (status, body)
            assert present.encode() not in body
        assert all(word.encode() not in body for word in absent)
        # Bound to its space: another patient's profile is not searched.
        status, body, _ = await api.call("GET", other_ins(path), headers=headers)
        assert status == 403 and "another patient" in outcome(body)

    absent_item = await api.call("GET", "/fhir/AllergyIntolerance/999999", headers=headers)
    assert (absent_item[0], outcome(absent_item[1])) == (404, "no AllergyIntolerance 999999")
    for path, readable in (
        (f"/fhir/AllergyIntolerance/{items['allergy']}", True),
        (f"/fhir/MedicationStatement/{items['treatment']}", True),
        (f"/fhir/MedicationStatement/{items['allergy']}", False),  # another category
        (f"/fhir/AllergyIntolerance/{items['elsewhere']}", False),  # another space
    ):
        status, body, _ = await api.call("GET", path, headers=headers)
        if readable and SERVICE_READS_PROFILE[name]:
            assert status == 200 and json.loads(body)["id"] == path.rsplit("/", 1)[1], body
        else:  # the very answer of an item that does not exist, whatever the reason
            kind, ident = path.split("/")[2:]
            assert (status, outcome(body)) == (404, f"no {kind} {ident}"), body
            assert all(w.encode() not in body for w in ("Arachide", "Ventoline", "Pénicilline"))

    status, body, answered = await api.call("GET", AGENDA_SEARCH, headers=headers)
    if SERVICE_READS_AGENDA[name]:
        assert status == 200, body
        bundle = json.loads(body)
        Bundle.model_validate(bundle)
        assert [e["resource"]["description"] for e in bundle["entry"]] == [CONVOCATION, OWN]
    else:
        assert scope_refused(status, answered), (status, body)
        assert CONVOCATION.encode() not in body
    status, body, answered = await api.call("GET", FEED, headers=headers)
    if SERVICE_READS_AGENDA[name]:
        assert status == 200 and answered["Content-Type"].startswith("text/calendar"), body
        text = body.decode()
        assert text.startswith("BEGIN:VCALENDAR") and "IRM c" in text and "Orthodontiste" in text
    else:
        assert scope_refused(status, answered) and b"VCALENDAR" not in body
    for path in (other_ins(AGENDA_SEARCH), other_ins(FEED)):
        status, body, _ = await api.call("GET", path, headers=headers)
        assert status == 403 and "another patient" in outcome(body)
    absent_appointment = await api.call("GET", "/fhir/Appointment/999999", headers=headers)
    for ident in appointments.values():
        status, body, _ = await api.call("GET", f"/fhir/Appointment/{ident}", headers=headers)
        if SERVICE_READS_AGENDA[name]:
            assert status == 200 and json.loads(body)["id"] == str(ident), body
        else:
            assert (status, outcome(body)) == (404, outcome(absent_appointment[1]))
    # A service never writes into the profile nor the agenda: those are professionals' writes.
    status, _b, _ = await api.call(
        "POST", "/fhir/AllergyIntolerance", headers=headers, json=allergy()
    )
    assert status == 401


async def test_profile_and_agenda_reads_are_in_the_history_and_end_with_the_connection(
    api: Api,
) -> None:
    await fill_profile(api)
    await fill_agenda(api.world)
    headers = await _bearer(api, "service_profile_and_agenda")
    assert (await api.call("GET", ALLERGIES, headers=headers))[0] == 200
    assert (await api.call("GET", AGENDA_SEARCH, headers=headers))[0] == 200
    assert (await api.call("GET", FEED, headers=headers))[0] == 200
    assert (await api.call("GET", SEARCH, headers=headers))[0] == 403  # no documents scope
    async with api.world.db.read() as session:
        lines = await read_history(session, api.world.patient.id)
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.actor_kind == "service").order_by(AuditEvent.id)
            )
        ).all()
    who = "Service service-profile-and-agenda (service connecté)"
    said = {(line.what, line.who) for line in lines}
    for what in (
        "Profil médical consulté par un service connecté",
        "Agenda consulté par un service connecté",
        "Accès refusé à un service connecté",
    ):
        assert (what, who) in said, said
    kinds = [(e.action, e.actor) for e in events]
    assert kinds == [
        ("service_profile_read", "service-profile-and-agenda"),
        ("service_agenda_read", "service-profile-and-agenda"),
        ("service_agenda_read", "service-profile-and-agenda"),
        ("service_access_refused", "service-profile-and-agenda"),
    ]

    # The guardian disconnects it in the portal: every door answers 401 invalid_token.
    async with api.world.db.write() as session:
        (connection,) = (await session.scalars(select(ServiceConnection))).all()
        assert await revoke(
            session, api.world.patient, api.world.guardian, connection.id, source="portal"
        )
    for path in (ALLERGIES, AGENDA_SEARCH, FEED, "/fhir/AllergyIntolerance/1"):
        status, body, answered = await api.call("GET", path, headers=headers)
        assert status == 401, (path, body)
        assert 'error="invalid_token"' in answered["WWW-Authenticate"]
        assert b"Arachide" not in body and b"VCALENDAR" not in body
    # Only a token of the catalogue goes to the service's handler: any other Bearer token is
    # a professional's (here no OpenID provider is configured: the professionals' 401).
    for path in (ALLERGIES, AGENDA_SEARCH, FEED):
        status, body, answered = await api.call(
            "GET", path, headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}
        )
        assert status == 401 and answered["WWW-Authenticate"].startswith("Basic "), path


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
