"""The MSSanté whitelist import (the ANS sample, then broken).

Property: parse_whitelist returns or raises InvalidInput with a sentence; and when the
import is refused, the trust list and the audit log are exactly as they were.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given
from sqlalchemy import func, select

from mss.audit import AuditEvent
from mss.db import Database
from mss.directory.import_whitelist import import_whitelist
from mss.directory.models import TrustedDomain
from mss.errors import InvalidInput
from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.refused_imports import refused_inputs
from tests.fuzz.targets import check, inputs, seeds

ROOT = b'<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">'


@fuzz_settings(80)
@given(inputs("whitelist"))
@example(
    b'<?xml version="1.0" encoding="UTQ-8"?>' + ROOT + b"</ListeBlancheMSSante>"
)  # LookupError
@example(
    ROOT + b"<a>" * 5000 + b"</a>" * 5000 + b"</ListeBlancheMSSante>"
)  # deeper than MAX_XML_DEPTH
def test_whitelist_is_read_or_refused(data: bytes) -> None:
    check("whitelist", data)


async def _state(db: Database) -> tuple[list[tuple[str, str, bool, str]], int]:
    async with db.read() as session:
        rows = (await session.scalars(select(TrustedDomain).order_by(TrustedDomain.id))).all()
        audit = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
    return [(r.domain, r.operator_dn, r.enabled, r.description) for r in rows], audit


async def test_refused_whitelist_changes_nothing(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "liste.xml"
    path.write_bytes(seeds("whitelist")[0])
    async with db.write() as session:
        await import_whitelist(session, str(path))
    before = await _state(db)
    hostile = refused_inputs("whitelist", 6)
    assert len(hostile) == 6
    for data in hostile:
        path.write_bytes(data)
        try:
            async with db.write() as session:
                await import_whitelist(session, str(path))
        except InvalidInput as refused:
            assert refused.sentence
        assert await _state(db) == before, data[:200]
