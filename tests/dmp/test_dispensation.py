"""eDISP-MED dispensations: the items read from the CDA body, the precise refusal of a malformed
one by mail (error MDN 906) and through ITI-65 (422), the DocumentReference type search and the
MedicationDispense search under consent."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationdispense import MedicationDispense
from sqlalchemy import select

from dmp_bridge.cda import read_cda_header
from dmp_bridge.dispensation import (
    CIP_OID,
    DISPENSATION_TYPE,
    dispensation_refusal,
    read_dispensation,
)
from dmp_bridge.dispensation_cda import DispensationParty, DispenseLine, build_dispensation
from dmp_bridge.documents import DocumentDraft, insert_document
from dmp_bridge.errors import XdmError
from mss.audit import AuditEvent
from tests.dmp.conftest import Api
from tests.dmp.filing_helpers import FilingHub, add_patient, notification_fields
from tests.dmp.matrix import ID_NATS, REASON
from tests.dmp.test_api_matrix import outcome, provide_bundle
from tests.smtp.conftest import PHARMACY, Hub, hub  # noqa: F401 - the gateway fixture
from tests.xdm_factory import INS, INS_TEST_OID, PDF, DocSpec, XdmSpec, make_cda, make_xdm

PARIS = ZoneInfo("Europe/Paris")
WHEN = dt.datetime(2024, 1, 15, 10, 30, tzinfo=PARIS)  # the XDM factory's creationTime
PARTY = DispensationParty(
    ins=INS,
    family="NESSI",
    given="Ruth",
    birth_date=dt.date(1977, 7, 14),
    gender="F",
    pharmacist_id_nat="810000000013",
    pharmacist_family="BERNARD",
    pharmacist_given="Paul",
    pharmacy="Pharmacie du Centre",
    pharmacy_finess="750001232",
    ins_oid=INS_TEST_OID,
)
LINES = [
    DispenseLine(
        "DOLIPRANE 1000 mg, comprimé",
        "3400935955838",
        2,
        "boîtes",
        "1 comprimé jusqu'à 3 fois par jour",
        WHEN,
    ),
    DispenseLine(
        "LÉVOTHYROX 75 microgrammes, comprimé",
        "3400936595996",
        Decimal("1.5"),
        "boîte",
        "1 comprimé le matin à jeun",
        WHEN - dt.timedelta(days=1),
    ),
]
LOINC_TYPE = "http://loinc.org|60593-1"


def dispensation(extension: str = "42", lines: list[DispenseLine] = LINES) -> bytes:
    return build_dispensation(
        PARTY,
        lines,
        document_root="1.2.250.1.999.1.1.20240101",
        document_extension=extension,
        effective_time=WHEN,
    )


def test_the_items_are_read_from_the_body() -> None:
    data = dispensation()
    header = read_cda_header(data)
    assert header.refusals == () and header.code is not None
    assert header.code.code == DISPENSATION_TYPE
    first, second = read_dispensation(data)
    assert (first.medicine, first.code, first.code_system) == (
        "DOLIPRANE 1000 mg, comprimé",
        "3400935955838",
        CIP_OID,
    )
    assert (first.quantity_text, first.dose) == ("2 boîtes", "1 comprimé jusqu'à 3 fois par jour")
    assert (first.pharmacy, first.pharmacy_id) == ("Pharmacie du Centre", "750001232")
    assert first.dispensed_at == WHEN
    assert second.quantity_text == "1.5 boîte" and second.dispensed_at == WHEN - dt.timedelta(1)
    assert dispensation_refusal(header, data) is None
    other_type = make_cda()  # a consultation report is not read as a dispensation
    assert dispensation_refusal(read_cda_header(other_type), other_type) is None


def _edit(old: str, new: str) -> bytes:
    data = dispensation().decode()
    assert old in data
    return data.replace(old, new, 1).encode()


MALFORMED = {
    "level 1": (
        make_cda(code=DISPENSATION_TYPE, display="Dispensation médicamenteuse", level1_pdf=PDF),
        "it has no structuredBody",
    ),
    "no item": (
        make_cda(code=DISPENSATION_TYPE, display="Dispensation médicamenteuse"),
        "its body lists no dispensed item (no entry/supply with moodCode EVN)",
    ),
    "no medicine": (
        _edit(dispensation().decode().split("<product>")[1].split("</product>")[0], ""),
        "dispensed item 1 has no product/manufacturedProduct/manufacturedMaterial",
    ),
    "nameless": (
        _edit(
            'displayName="DOLIPRANE 1000 mg, comprimé"/><name>DOLIPRANE 1000 mg, comprimé</name>',
            "/>",
        ),
        "dispensed item 1 names no medicine",
    ),
    "quantity": (
        _edit('<quantity value="2"', '<quantity value="deux"'),
        "dispensed item 1 has the quantity 'deux', which is not a positive number",
    ),
    "date": (
        _edit('<effectiveTime value="20240114', '<effectiveTime value="2024-01-14'),
        "dispensed item 2 has the date '2024-01-14",
    ),
    "code system": (
        _edit(f'code="3400935955838" codeSystem="{CIP_OID}"', 'code="3400935955838"'),
        "dispensed item 1 gives the medicine code '3400935955838' without its codeSystem",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_dispensation_is_refused_precisely(case: str) -> None:
    data, expected = MALFORMED[case]
    with pytest.raises(XdmError) as raised:
        read_dispensation(data)
    assert raised.value.code == 906
    assert expected in raised.value.sentence, raised.value.sentence
    assert raised.value.sentence_fr.startswith("La dispensation (eDISP-MED, 60593-1) est illisible")
    refusal = dispensation_refusal(read_cda_header(data), data)
    assert refusal == raised.value


# By mail: the XDM package of the pharmacy's mailbox, filed by the follow-up job.


@pytest.fixture
async def dmp(hub: Hub) -> FilingHub:  # noqa: F811
    return FilingHub(hub, await add_patient(hub))


def _package(content: bytes, extension: str = "42") -> bytes:
    return make_xdm(
        XdmSpec(
            documents=[
                DocSpec(
                    content=content,
                    unique_id=f"1.2.250.1.999.1.1.20240101^{extension}",
                    entry_id=f"urn:uuid:9a0b1c2d-0001-4000-8000-0000000000{extension}",
                    type_code=(DISPENSATION_TYPE, "2.16.840.1.113883.6.1"),
                    title="Dispensation médicamenteuse",
                    author_person="810000000013^BERNARD^Paul^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
                )
            ]
        )
    )


async def test_by_mail_a_dispensation_is_filed_and_a_malformed_one_answers_error_906(
    dmp: FilingHub,
) -> None:
    """The pharmacy's organisational mailbox sends, as a pharmacy's software would."""
    await dmp.send(_package(dispensation()), sender=PHARMACY)
    [document] = await dmp.documents()
    assert (document.type_code, document.status) == (DISPENSATION_TYPE, "current")
    assert document.author_id_nat == "810000000013"  # the pharmacist of METADATA.XML
    [processed] = await dmp.mdns(PHARMACY)
    assert notification_fields(processed)["Disposition"].endswith("; processed")

    data, expected = MALFORMED["quantity"]
    await dmp.send(
        _package(data.replace(b'extension="42"', b'extension="43"', 1), "43"), sender=PHARMACY
    )
    assert await dmp.count() == 1  # refused as the filing rules refuse an unreadable CDA
    error = (await dmp.mdns(PHARMACY))[-1]
    assert str(notification_fields(error)["Disposition"]).startswith(
        "automatic-action/MDN-sent-automatically; processed/Error: 906^"
    )
    text = error.get_body(("plain",))
    assert text is not None and "la quantité 'deux', qui n'est pas un nombre positif" in (
        text.get_content()
    )


# Through the document API (ITI-65 provide, ITI-67 find, MedicationDispense).


def _provide(content: bytes, unique: str) -> dict[str, object]:
    bundle = provide_bundle(title="Dispensation", content=content, unique=unique)
    reference = bundle["entry"][0]["resource"]
    reference["type"]["coding"][0].update(code=DISPENSATION_TYPE, display="Dispensation")
    return bundle


async def test_through_the_api_provide_find_by_type_and_medication_dispense(api: Api) -> None:
    status, body, _ = await api.call(
        "POST", "/fhir", role="authorised", json=_provide(dispensation("77"), "1.2.250.1.999^77")
    )
    assert status == 200, body
    search = f"/fhir/DocumentReference?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"
    status, body, _ = await api.call("GET", f"{search}&type={LOINC_TYPE}", role="treating")
    [entry] = json.loads(body)["entry"]
    assert entry["resource"]["type"]["coding"][0]["code"] == DISPENSATION_TYPE
    status, body, _ = await api.call("GET", f"{search}&type=60593-1", role="treating")
    assert json.loads(body)["total"] == 1
    status, body, _ = await api.call("GET", f"{search}&type=|", role="treating")
    assert status == 400 and "must be a token [system|]code" in outcome(body)

    dispenses = f"/fhir/MedicationDispense?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"
    status, body, _ = await api.call("GET", dispenses, role="treating")
    assert status == 200, body
    bundle = json.loads(body)
    Bundle.model_validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    for resource in resources:
        MedicationDispense.model_validate(resource)
    newest, oldest = resources
    assert newest["medicationCodeableConcept"]["coding"][0] == {
        "system": f"urn:oid:{CIP_OID}",
        "code": "3400935955838",
        "display": "DOLIPRANE 1000 mg, comprimé",
    }
    assert (newest["status"], newest["quantity"]) == ("completed", {"value": 2.0, "unit": "boîtes"})
    assert newest["dosageInstruction"][0]["text"] == "1 comprimé jusqu'à 3 fois par jour"
    assert newest["performer"][0]["actor"]["display"] == "Pharmacie du Centre"
    assert newest["whenHandedOver"] == "2024-01-15T09:30:00Z"
    assert oldest["medicationCodeableConcept"]["text"].startswith("LÉVOTHYROX")
    document_id = entry["resource"]["id"]
    assert newest["id"] == f"{document_id}-1"
    assert newest["supportingInformation"] == [{"reference": f"DocumentReference/{document_id}"}]


async def test_a_malformed_dispensation_is_refused_by_provide(api: Api) -> None:
    data, _expected = MALFORMED["date"]
    status, body, _ = await api.call(
        "POST", "/fhir", role="authorised", json=_provide(data, "1.2.250.1.999^78")
    )
    assert status == 422
    assert outcome(body).startswith("906: The dispensation (eDISP-MED, 60593-1) cannot be read: ")
    assert "dispensed item 2 has the date '2024-01-14" in outcome(body)
    dispenses = f"/fhir/MedicationDispense?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"
    status, body, _ = await api.call("GET", dispenses, role="treating")
    assert json.loads(body)["total"] == 0  # nothing filed


async def test_medication_dispense_follows_consent_and_break_glass(api: Api) -> None:
    world = api.world
    async with world.db.write() as session:
        patient = await world.fresh_patient()
        patient = await session.merge(patient)
        for n, masked in ((1, False), (2, True)):
            await insert_document(
                session,
                patient,
                DocumentDraft(
                    content=dispensation(f"9{n}", LINES[:1]),
                    mime_type="text/xml",
                    title=f"Dispensation {n}",
                    unique_id=f"1.2.250.1.999.1.1.20240101^9{n}",
                    type_code=DISPENSATION_TYPE,
                    type_system="2.16.840.1.113883.6.1",
                    author_id_nat=ID_NATS["author"],
                    masked_from_professionals=masked,
                ),
            )
    dispenses = f"/fhir/MedicationDispense?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"
    totals = {}
    for role in ("treating", "authorised", "unauthorised", "blocked"):
        status, body, _ = await api.call("GET", dispenses, role=role)
        totals[role] = json.loads(body)["total"] if status == 200 else status
    # MASQUE_PS hides the second one from every professional but the médecin traitant.
    assert totals == {"treating": 2, "authorised": 1, "unauthorised": 403, "blocked": 403}
    status, body, _ = await api.call("GET", dispenses, role="break_glass", reason=REASON)
    assert (status, json.loads(body)["total"]) == (200, 1)
    async with world.db.read() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.patient_id == world.patient.id)
            )
        ).all()
    assert actions.count("dispensation_history_read") == 3  # treating, authorised, break-glass
    assert "emergency_access" in actions


async def test_a_stored_dispensation_that_cannot_be_read_is_left_out(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Filed before the check (or by a path that does not read it): the rest still shows."""
    world = api.world
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        for n, content in ((1, dispensation("81", LINES[:1])), (2, MALFORMED["no item"][0])):
            await insert_document(
                session,
                patient,
                DocumentDraft(
                    content=content,
                    mime_type="text/xml",
                    unique_id=f"1.2.250.1.999^8{n}",
                    type_code=DISPENSATION_TYPE,
                ),
            )
    dispenses = f"/fhir/MedicationDispense?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"
    with caplog.at_level("WARNING", logger="dmp_bridge.dispensations"):
        status, body, _ = await api.call("GET", dispenses, role="treating")
    assert (status, json.loads(body)["total"]) == (200, 1)
    assert "not shown" in caplog.text and "lists no dispensed item" in caplog.text
