"""The professionals' side of the medical profile over real HTTPS: AllergyIntolerance and
MedicationStatement search, read and create; the role × action table; each author named (idNat
and name); bad input refused with an OperationOutcome naming the element; break-glass reads
logged and notified; every access on the patient's history in French."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationstatement import MedicationStatement
from sqlalchemy import select

from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_break_glass_opposition
from dmp_bridge.emergency import NOTIFY_TREATING_JOB
from mss.audit import AuditEvent
from mss.db import utcnow
from mss.jobs import Job
from mss.profile.models import ProfileItem
from mss.profile.store import add_item
from portal.history import read_history
from tests.dmp.conftest import Api
from tests.dmp.matrix import ID_NATS, PROFESSIONAL_ROLES, PROFILE_READ, PROFILE_WRITE, REASON
from tests.dmp.test_api_matrix import outcome
from tests.xdm_factory import INS, INS_TEST_OID

SUBJECT = {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": INS}}
ALLERGIES = f"/fhir/AllergyIntolerance?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"
TREATMENTS = f"/fhir/MedicationStatement?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"


def allergy(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "91936005"}],
            "text": "Allergie à la pénicilline",
        },
        "patient": SUBJECT,
        "onsetString": "2019",
        "note": [{"text": "Urticaire sous amoxicilline"}],
    }
    resource.update(changes)
    AllergyIntolerance.model_validate(resource)
    return resource


def treatment(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "urn:oid:1.2.250.1.213.2.3.2",
                    "code": "3400936595996",
                    "display": "LÉVOTHYROX 75 microgrammes",
                }
            ]
        },
        "subject": SUBJECT,
        "dosage": [{"text": "1 comprimé le matin à jeun"}],
    }
    resource.update(changes)
    resource = {k: v for k, v in resource.items() if v is not None}
    return resource


async def _patient_item(api: Api) -> int:
    """An allergy the patient wrote in the portal."""
    world = api.world
    async with world.db.write() as session:
        item = await add_item(
            session,
            world.patient.id,
            category="allergy",
            label="Arachide",
            author_kind="patient",
            author=INS,
            author_name="Ruth NESSI",
            now=utcnow(),
        )
        return item.id


async def _oppose(api: Api) -> None:
    world = api.world
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        await set_break_glass_opposition(session, Viewer.for_patient(patient), patient, True)


@pytest.mark.parametrize("role", PROFESSIONAL_ROLES)
async def test_profile_role_matrix_through_the_api(api: Api, role: str) -> None:
    if role == "break_glass_opposed":
        await _oppose(api)
    reason = REASON if role.startswith("break_glass") else None
    mine = await _patient_item(api)

    status, body, _ = await api.call("GET", ALLERGIES, role=role, reason=reason)
    assert status == PROFILE_READ[role], body
    if status == 200:
        bundle = json.loads(body)
        Bundle.model_validate(bundle)
        assert [e["resource"]["code"]["text"] for e in bundle["entry"]] == ["Arachide"]
    else:
        assert b"Arachide" not in body and outcome(body)

    status, body, _ = await api.call(
        "GET", f"/fhir/AllergyIntolerance/{mine}", role=role, reason=reason
    )
    # Named by id, an item of a record closed to the caller answers like an absent one.
    expected = 200 if PROFILE_READ[role] == 200 else 404
    assert status == expected, body
    if status == 404:
        absent = await api.call("GET", "/fhir/AllergyIntolerance/999999", role=role, reason=reason)
        assert (absent[0], outcome(absent[1])) == (404, "no AllergyIntolerance 999999")
        assert outcome(body) == f"no AllergyIntolerance {mine}"

    for kind, resource in (("AllergyIntolerance", allergy()), ("MedicationStatement", treatment())):
        status, body, headers = await api.call(
            "POST", f"/fhir/{kind}", role=role, reason=reason, json=resource
        )
        assert status == PROFILE_WRITE[role], body
        if status == 201:
            created = json.loads(body)
            assert headers["Location"].endswith(f"/fhir/{kind}/{created['id']}")
        else:
            assert outcome(body)
    async with api.world.db.read() as session:
        count = len((await session.scalars(select(ProfileItem))).all())
    assert count == (3 if PROFILE_WRITE[role] == 201 else 1)  # a refusal records nothing


async def test_each_item_names_its_author(api: Api) -> None:
    await _patient_item(api)
    status, body, _ = await api.call(
        "POST", "/fhir/MedicationStatement", role="treating", json=treatment()
    )
    assert status == 201, body
    created = json.loads(body)
    MedicationStatement.model_validate(created)
    assert created["informationSource"] == {
        "type": "Practitioner",
        "identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": ID_NATS["treating"]},
        "display": "Dr TREATING",
    }
    assert created["medicationCodeableConcept"]["text"] == "LÉVOTHYROX 75 microgrammes"
    assert created["dosage"] == [{"text": "1 comprimé le matin à jeun"}]

    status, body, _ = await api.call(
        "POST", "/fhir/AllergyIntolerance", role="authorised", json=allergy()
    )
    assert status == 201, body
    status, body, _ = await api.call("GET", ALLERGIES, role="authorised")
    resources = [e["resource"] for e in json.loads(body)["entry"]]
    for resource in resources:
        AllergyIntolerance.model_validate(resource)
    patient_side, professional = resources
    assert patient_side["recorder"]["type"] == "Patient"
    assert professional["recorder"]["identifier"]["value"] == ID_NATS["authorised"]
    assert professional["recorder"]["display"] == "Dr AUTHORISED"
    assert professional["code"]["coding"] == [
        {
            "system": "http://snomed.info/sct",
            "code": "91936005",
            "display": "Allergie à la pénicilline",
        }
    ]
    assert (professional["onsetString"], professional["note"]) == (
        "2019",
        [{"text": "Urticaire sous amoxicilline"}],
    )
    status, body, _ = await api.call("GET", TREATMENTS, role="authorised")
    [statement] = [e["resource"] for e in json.loads(body)["entry"]]
    assert statement["id"] == created["id"]
    read = await api.call("GET", f"/fhir/MedicationStatement/{created['id']}", role="authorised")
    assert json.loads(read[1]) == statement
    # An allergy's id is not a MedicationStatement.
    wrong_kind = await api.call(
        "GET", f"/fhir/MedicationStatement/{professional['id']}", role="treating"
    )
    assert wrong_kind[0] == 404

    async with api.world.db.read() as session:
        history = await read_history(session, api.world.patient.id, limit=100)
    lines = [(line.what, line.who, line.detail) for line in history]
    assert (
        "Information ajoutée au profil médical",
        "Dr TREATING",
        "",
    ) in [line for line in lines]
    assert any(
        what == "Profil médical consulté par un professionnel" and "allergies" in detail
        for what, _who, detail in lines
    )
    assert any(
        what == "Information du profil médical consultée par un professionnel" for what, *_ in lines
    )


BAD: dict[str, tuple[str, Any, int, str]] = {
    "not an object": ("AllergyIntolerance", [], 422, "must be a FHIR AllergyIntolerance"),
    "wrong type": (
        "AllergyIntolerance",
        treatment(),
        422,
        "resourceType is 'MedicationStatement'; this endpoint creates AllergyIntolerance",
    ),
    "no patient": (
        "AllergyIntolerance",
        allergy(patient={"reference": "Patient/1"}),
        422,
        "patient.identifier must name the patient by INS",
    ),
    "bare OID": (
        "MedicationStatement",
        treatment(
            medicationCodeableConcept={
                "coding": [{"system": "1.2.250.1.213.2.3.2", "code": "3400936595996"}],
                "text": "Lévothyrox",
            }
        ),
        422,
        "medicationCodeableConcept.coding[0].system '1.2.250.1.213.2.3.2' is not a URI",
    ),
    "no label": (
        "AllergyIntolerance",
        allergy(code={"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}]}),
        422,
        "code needs a text (or a coding display)",
    ),
    "stopped": (
        "MedicationStatement",
        treatment(status="stopped"),
        422,
        "MedicationStatement.status 'stopped': the profile lists the treatments taken now",
    ),
    "bad status": ("MedicationStatement", treatment(status="taken"), 422, "status is required"),
    "resolved": (
        "AllergyIntolerance",
        allergy(
            clinicalStatus={
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "resolved",
                    }
                ]
            }
        ),
        422,
        "clinicalStatus 'resolved'",
    ),
    "unknown element": (
        "AllergyIntolerance",
        allergy(reaction=[{"manifestation": [{"text": "urticaire"}]}]),
        422,
        "AllergyIntolerance elements not read by this server: reaction",
    ),
    "reference": (
        "MedicationStatement",
        treatment(medicationReference={"reference": "Medication/1"}),
        422,
        "elements not read by this server: medicationReference",
    ),
    "control character": (
        "AllergyIntolerance",
        allergy(note=[{"text": "Urticaire\u202e"}]),
        422,
        "note[0].text contains control or invisible characters",
    ),
    "too long": (
        "MedicationStatement",
        treatment(dosage=[{"text": "x" * 2001}]),
        422,
        "dosage[0].text is longer than 2000 characters",
    ),
    "unknown patient": (
        "AllergyIntolerance",
        allergy(patient={"identifier": {**SUBJECT["identifier"], "value": "199999999999999"}}),
        404,
        "no medical record",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_bad_input_is_refused_with_the_element_named(api: Api, case: str) -> None:
    kind, resource, status, expected = BAD[case]
    answer, body, _ = await api.call("POST", f"/fhir/{kind}", role="treating", json=resource)
    assert answer == status, body
    assert expected in outcome(body)
    async with api.world.db.read() as session:
        assert (await session.scalars(select(ProfileItem))).all() == []


async def test_not_json_and_bad_search_parameters(api: Api) -> None:
    status, body, _ = await api.call(
        "POST", "/fhir/AllergyIntolerance", role="treating", data=b"{not json"
    )
    assert status == 400 and outcome(body)
    status, body, _ = await api.call("GET", "/fhir/AllergyIntolerance", role="treating")
    assert status == 400 and outcome(body) == "patient.identifier is required"
    status, body, _ = await api.call("GET", ALLERGIES + "&clinical-status=active", role="treating")
    assert status == 400 and "clinical-status" in outcome(body)
    status, body, _ = await api.call("GET", "/fhir/AllergyIntolerance/abc", role="treating")
    assert status == 404


async def test_break_glass_reads_allergies_logged_and_notified(api: Api) -> None:
    await _patient_item(api)
    status, body, _ = await api.call("GET", ALLERGIES, role="break_glass", reason="urgence")
    assert status == 422 and "too short" in outcome(body)
    status, body, _ = await api.call("GET", ALLERGIES, role="break_glass")
    assert status == 403 and "state a reason" in outcome(body)
    for path in (ALLERGIES, TREATMENTS):
        status, body, _ = await api.call("GET", path, role="break_glass", reason=REASON)
        assert status == 200, body
    status, body, _ = await api.call(
        "POST", "/fhir/AllergyIntolerance", role="break_glass", reason=REASON, json=allergy()
    )
    assert status == 403 and "only reads them" in outcome(body)
    async with api.world.db.read() as session:
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "emergency_access"))
        ).all()
        jobs = (await session.scalars(select(Job.kind))).all()
        history = await read_history(session, api.world.patient.id, limit=100)
    assert [e.detail["reason"] for e in events] == [REASON, REASON]
    assert list(jobs).count(NOTIFY_TREATING_JOB) == 1  # one alert for one emergency
    whats = [line.what for line in history]
    assert "Accès en urgence au dossier" in whats
    assert "Accès au profil médical refusé" in whats  # the refused write
    assert whats.count("Profil médical consulté par un professionnel") == 2
    assert any(REASON in line.detail for line in history)
