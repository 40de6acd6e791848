"""FHIR JSON bodies: the ITI-65 provide Bundle, an AllergyIntolerance or MedicationStatement to
record, a new Appointment and the directory import file.

Property: read, or refused with the API's or the importer's error and a sentence; a refused
directory import writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given
from sqlalchemy import func, select

from mss.audit import AuditEvent
from mss.db import Database
from mss.directory.import_fhir import import_fhir
from mss.directory.models import Mailbox, Organisation, Professional
from mss.errors import InvalidInput
from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.refused_imports import refused_inputs
from tests.fuzz.targets import check, inputs

HUGE_INTEGER = b'{"resourceType": "Bundle", "entry": ' + b"9" * 5000 + b"}"


@fuzz_settings(100)
@given(inputs("fhir_documents"))
@example(HUGE_INTEGER)  # ValueError: int() of more than 4300 digits, not a JSONDecodeError
def test_provide_bundle_is_read_or_refused(data: bytes) -> None:
    check("fhir_documents", data)


@fuzz_settings(100)
@given(inputs("fhir_profile"))
@example(HUGE_INTEGER)
@example(b'{"resourceType": "AllergyIntolerance", "note": [{"text": 7}]}')
def test_profile_resource_is_read_or_refused(data: bytes) -> None:
    check("fhir_profile", data)


@given(inputs("fhir_appointment"))
@example(HUGE_INTEGER)
def test_new_appointment_is_read_or_refused(data: bytes) -> None:
    check("fhir_appointment", data)


@fuzz_settings(100)
@given(inputs("fhir_directory"))
@example(HUGE_INTEGER)
def test_directory_file_is_read_or_refused(data: bytes) -> None:
    check("fhir_directory", data)


@fuzz_settings(100)
@given(inputs("fhir_observation"))
@example(HUGE_INTEGER)
@example(b'{"resourceType": "Observation", "valueQuantity": {"value": NaN}}')
def test_observation_is_read_or_refused(data: bytes) -> None:
    check("fhir_observation", data)


async def _counts(db: Database) -> list[int]:
    async with db.read() as session:
        return [
            (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (Organisation, Professional, Mailbox, AuditEvent)
        ]


async def test_refused_directory_file_writes_nothing(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "annuaire.json"
    before = await _counts(db)
    hostile = refused_inputs("fhir_directory", 5)
    assert len(hostile) == 5
    for data in hostile:
        path.write_bytes(data)
        try:
            async with db.write() as session:
                await import_fhir(session, str(path))
        except InvalidInput as refused:
            assert refused.sentence
        assert await _counts(db) == before, data[:200]
