"""The patient roster CSV import (a valid roster, then broken).

Property: parse_patients returns or raises InvalidInput with a sentence; and when the
import is refused, no patient, mailbox, guardianship or audit row was written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import example, given
from sqlalchemy import func, select

from mss.audit import AuditEvent
from mss.config import Settings
from mss.db import Database
from mss.directory.import_patients import import_patients
from mss.directory.models import Guardianship, Mailbox, Patient
from mss.errors import InvalidInput
from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.refused_imports import refused_inputs
from tests.fuzz.targets import check, inputs

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@fuzz_settings(150)
@given(inputs("patients_csv"))
@example(b'ins,""2A')  # csv.Error in the header line
def test_roster_is_read_or_refused(data: bytes) -> None:
    check("patients_csv", data)


async def _counts(db: Database) -> list[int]:
    async with db.read() as session:
        return [
            (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (Patient, Mailbox, Guardianship, AuditEvent)
        ]


async def test_refused_roster_writes_nothing(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "roster.csv"
    before = await _counts(db)
    hostile = refused_inputs("patients_csv", 6)
    assert len(hostile) == 6
    for data in hostile:
        path.write_bytes(data)
        try:
            async with db.write() as session:
                await import_patients(session, settings, str(path), now=NOW)
        except InvalidInput as refused:
            assert refused.sentence
        assert await _counts(db) == before, data[:200]
