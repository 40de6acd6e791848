"""The role x action table through the MHD API over TLS: list (documents and dispensations), read,
deposit, replace, and the shared agenda (read as FHIR and .ics, add); zero leaks (the profile's
rows: tests/dmp/test_clinical_api.py).

Every answer validates with fhir.resources (R4B); a hidden document answers
exactly like a document that does not exist.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_break_glass_opposition
from mss.agenda.models import Appointment
from mss.policy.agenda import AgendaSharing
from tests.dmp.agenda_world import (
    AGENDA_SEARCH,
    CONVOCATION,
    FEED,
    OWN,
    fill_agenda,
    new_appointment,
    share,
)
from tests.dmp.conftest import Api
from tests.dmp.matrix import (
    AGENDA_ADD,
    AGENDA_READ,
    DEPOSIT,
    DOCUMENTS,
    LIST_REFUSED,
    PROFESSIONAL_ROLES,
    REASON,
    REPLACE,
    VISIBLE,
    read_status,
)
from tests.xdm_factory import INS, INS_TEST_OID, make_cda

SEARCH = f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{INS}"


def outcome(body: bytes) -> str:
    data = json.loads(body)
    OperationOutcome.model_validate(data)
    return str(data["issue"][0]["diagnostics"])


def provide_bundle(
    *,
    title: str = "Note",
    replaces: int | None = None,
    flags: tuple[str, ...] = (),
    content: bytes | None = None,
    content_type: str = "text/xml",
    unique: str = "",
) -> dict[str, Any]:
    data = content if content is not None else make_cda(doc_ext=unique or "900")
    reference: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"value": unique or f"1.2.250.1.999.1.1.20240101^{title}"},
        "subject": {"identifier": {"system": f"urn:oid:{INS_TEST_OID}", "value": INS}},
        "type": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "11488-4",
                    "display": "Compte rendu de consultation",
                }
            ]
        },
        "description": title,
        "content": [{"attachment": {"contentType": content_type, "url": "urn:uuid:binary-1"}}],
    }
    if flags:
        reference["securityLabel"] = [
            {"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.13", "code": f}]} for f in flags
        ]
    if replaces is not None:
        reference["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{replaces}"}}
        ]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:docref-1",
                "resource": reference,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": "urn:uuid:binary-1",
                "resource": {
                    "resourceType": "Binary",
                    "contentType": content_type,
                    "data": base64.b64encode(data).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }
    Bundle.model_validate(bundle)
    return bundle


async def _oppose(api: Api, role: str) -> None:
    if role != "break_glass_opposed":
        return
    world = api.world
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        await set_break_glass_opposition(session, Viewer.for_patient(patient), patient, True)


@pytest.mark.parametrize("role", PROFESSIONAL_ROLES)
async def test_role_matrix_through_the_api(api: Api, role: str) -> None:
    await _oppose(api, role)
    reason = REASON if role.startswith("break_glass") else None
    names = {str(v): k for k, v in api.world.documents.items()}

    status, body, _ = await api.call("GET", SEARCH, role=role, reason=reason)
    assert status == LIST_REFUSED.get(role, 200), body
    if status == 200:
        bundle = json.loads(body)
        Bundle.model_validate(bundle)
        found = {names[e["resource"]["id"]] for e in bundle["entry"]}
        assert found == VISIBLE[role]
        for entry in bundle["entry"]:
            DocumentReference.model_validate(entry["resource"])
        hidden = set(DOCUMENTS) - found
        assert not any(f"Compte rendu {h}".encode() in body for h in hidden)
    else:
        assert b"Compte rendu" not in body and outcome(body)
    # The dispensation history (MedicationDispense) is listed by the very same rule.
    status, body, _ = await api.call(
        "GET", SEARCH.replace("DocumentReference", "MedicationDispense"), role=role, reason=reason
    )
    assert status == LIST_REFUSED.get(role, 200), body

    for name in DOCUMENTS:
        document_id = api.world.documents[name]
        status, body, _ = await api.call(
            "GET", f"/fhir/Binary/{document_id}", role=role, reason=reason
        )
        # Named only by its id, a document of a record closed to the caller reads as absent.
        assert status == (read_status(role, name) if role not in LIST_REFUSED else 404), (
            role,
            name,
            body,
        )
        if status == 200:
            assert body.startswith(b"<?xml")
        else:
            assert b"ClinicalDocument" not in body and name.encode() not in body
            text = outcome(body)
            if status == 404:  # the very answer of a document that does not exist
                absent_status, absent, _ = await api.call(
                    "GET", "/fhir/Binary/999999", role=role, reason=reason
                )
                assert (absent_status, outcome(absent)) == (404, text)

    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role=role,
        reason=reason,
        json=provide_bundle(title=f"Note {role}", unique=f"7{len(role)}"),
    )
    assert status == DEPOSIT[role], body
    if status == 200:
        Bundle.model_validate(json.loads(body))

    status, body, _ = await api.call(
        "POST",
        "/fhir",
        role=role,
        reason=reason,
        json=provide_bundle(title="v2", replaces=api.world.documents["plain"], unique="8000"),
    )
    assert status == REPLACE[role], body
    outcome(body)


@pytest.mark.parametrize("role", PROFESSIONAL_ROLES)
async def test_agenda_matrix_through_the_api(api: Api, role: str) -> None:
    await _oppose(api, role)
    ids = await fill_agenda(api.world)
    await share(api.world, AgendaSharing.AUTHORISED)
    reason = REASON if role.startswith("break_glass") else None
    expected = AGENDA_READ[role]
    for path in (AGENDA_SEARCH, FEED, f"/fhir/Appointment/{ids['convocation']}"):
        status, body, _ = await api.call("GET", path, role=role, reason=reason)
        by_id = "/fhir/Appointment/" in path
        assert status == (404 if by_id and expected != 200 else expected), (role, path, body)
        if status != 200:
            assert CONVOCATION.encode() not in body and OWN.encode() not in body
            assert b"irm-42" not in body and outcome(body)
    status, body, _ = await api.call(
        "POST", "/fhir/Appointment", role=role, reason=reason, json=new_appointment()
    )
    assert status == AGENDA_ADD[role], body
    async with api.world.db.read() as session:
        added = (
            await session.scalars(select(Appointment).where(Appointment.origin == "professional"))
        ).all()
    assert len(added) == (1 if status == 201 else 0)
