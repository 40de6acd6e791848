"""Patient roster import: opposition window, PAT mailboxes, guardians, every refusal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mss.audit import AuditEvent
from mss.config import Settings
from mss.db import Database
from mss.directory.identifiers import ins_key
from mss.directory.import_patients import import_patients
from mss.directory.models import Guardianship, Mailbox, MailboxKind, Patient, PatientState
from mss.directory.store import find_mailbox, find_patient_by_email, find_patient_by_ins
from mss.errors import InvalidInput

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HEADER = "ins,family_name,given_names,birth_date,email,phone,guardian_ins\n"
MOTHER = "277076322082910"  # the INS of the ANS CDA sample, key OK


def ins(first13: str) -> str:
    return f"{first13}{ins_key(first13):02d}"


CHILD = ins("2150775123456")
CORSICAN = ins("185052A123456")


def roster(tmp_path: Path, *lines: str, header: str = HEADER, name: str = "roster.csv") -> str:
    path = tmp_path / name
    path.write_text(header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


async def _import(db: Database, settings: Settings, path: str, **kwargs: bool):  # type: ignore[no-untyped-def]
    async with db.write() as session:
        return await import_patients(session, settings, path, now=NOW, **kwargs)


async def _counts(db: Database) -> tuple[int, int, int]:
    async with db.read() as session:
        return tuple(
            [
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (Patient, Mailbox, Guardianship)
            ]
        )  # type: ignore[return-value]


GOOD = (
    f"{CHILD},NESSI,Léa,2015-07-01,,,{MOTHER}",  # the guardian comes later in the file
    f"{MOTHER},NESSI,Marie Anne,1977-07-15,Marie.Nessi@Example.org,06 12 34 56 78,",
    f"{CORSICAN},CASANOVA,Ange,1985-05-20,,,",
)


async def test_roster_with_guardian_and_corsican_ins(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    report = await _import(db, settings, roster(tmp_path, *GOOD))
    assert (report.added, report.updated, report.skipped) == (3, 0, [])
    assert await _counts(db) == (3, 3, 1)
    async with db.read() as session:
        mother = await find_patient_by_ins(session, MOTHER)
        child = await find_patient_by_ins(session, CHILD)
        assert mother is not None and child is not None
        assert mother.state is PatientState.OPPOSITION_WINDOW
        assert mother.opposition_deadline == NOW + dt.timedelta(days=42)
        assert (mother.email, mother.phone) == ("marie.nessi@example.org", "+33612345678")
        assert mother.birth_date == dt.date(1977, 7, 15) and mother.given_names == "Marie Anne"
        box = await find_mailbox(session, f"{MOTHER}@patient.mss.localhost")
        assert box is not None and box.kind is MailboxKind.PAT and box.patient_id == mother.id
        assert await find_patient_by_email(session, "MARIE.NESSI@example.org") == mother
        assert await find_patient_by_email(session, f"{CHILD}@patient.mss.localhost") == child
        link = (await session.scalars(select(Guardianship))).one()
        assert (link.guardian_id, link.minor_id) == (mother.id, child.id)
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    # The patient can read in the portal who created their account, and the guardianship.
    assert [(e.action, e.patient_id) for e in events] == [
        ("patient.created", mother.id),
        ("patient.created", events[1].patient_id),
        ("patient.created", child.id),
        ("guardian.added", child.id),
        ("directory.imported", None),
    ]
    assert events[-1].detail["added"] == 3 and events[0].actor_kind == "operator"


async def test_reimport_changes_nothing_then_updates(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = roster(tmp_path, *GOOD)
    await _import(db, settings, path)
    again = await _import(db, settings, path)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert "nothing changed" in again.summary()
    moved = roster(
        tmp_path, f"{MOTHER},NESSI,Marie Anne,1977-07-15,marie@example.org,,", name="moved.csv"
    )
    report = await _import(db, settings, moved)
    assert (report.added, report.updated) == (0, 1)
    async with db.read() as session:
        mother = await find_patient_by_ins(session, MOTHER)
    assert mother is not None and (mother.email, mother.phone) == ("marie@example.org", None)
    assert await _counts(db) == (3, 3, 1)


async def test_guardian_already_in_the_directory(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    await _import(db, settings, roster(tmp_path, GOOD[1], name="a.csv"))
    report = await _import(db, settings, roster(tmp_path, GOOD[0], name="b.csv"))
    assert report.added == 1
    assert await _counts(db) == (2, 2, 1)


async def test_semicolons_and_fewer_optional_columns(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = roster(
        tmp_path,
        f"{MOTHER};NESSI;Marie;1977-07-15",
        header="INS;Family_Name;given_names;birth_date\n",
    )
    assert (await _import(db, settings, path)).added == 1


@pytest.mark.parametrize(
    "header, lines, sentence",
    [
        ("ins,family_name,given_names,birth_date,nir\n", [], r"roster.csv:1: unknown column 'nir'"),
        ("ins,family_name,given_names\n", [], r"roster.csv:1: missing column\(s\) birth_date"),
        (
            HEADER,
            [f"{MOTHER[:-2]}12,NESSI,Marie,1977-07-15,,,"],
            r"roster.csv:2: INS '277076322082912' has key 12 but its NIR gives key 10",
        ),
        (
            HEADER,
            [GOOD[2], f"{MOTHER},NESSI,Marie,15/07/1977,,,"],
            r"roster.csv:3: birth_date '15/07/1977' is not a date written YYYY-MM-DD",
        ),
        (
            HEADER,
            [GOOD[1], GOOD[2], GOOD[1]],
            rf"roster.csv:4: INS {MOTHER} already appears on line 2",
        ),
        (
            HEADER,
            [f"{CHILD},NESSI,Léa,2015-07-01,,,{CORSICAN[:-2]}00"],
            r"roster.csv:2: INS .* has key 00",
        ),
        (
            HEADER,
            [f"{CHILD},NESSI,Léa,2015-07-01,,,{MOTHER}"],
            rf"roster.csv:2: guardian INS {MOTHER} is neither a valid line of this file nor "
            rf"a patient",
        ),
        (
            HEADER,
            [f"{MOTHER},NESSI,Marie,1977-07-15,,,{CORSICAN}", GOOD[2]],
            r"roster.csv:2: patient .* is 48 years old; guardians are recorded for minors only",
        ),
        (
            HEADER,
            [f"{MOTHER},NESSI,Marie,1977-07-15,pas-une-adresse,,"],
            r"roster.csv:2: 'pas-une-adresse' is not a mail address",
        ),
        (
            HEADER,
            [f"{MOTHER},NESSI,Marie,1977-07-15,,"],
            r"roster.csv:2: 6 fields but the header has 7",
        ),
        (
            HEADER,
            [f"{MOTHER},,Marie,1977-07-15,,,"],
            r"roster.csv:2: the family_name column is empty",
        ),
        (
            HEADER,
            [f"{MOTHER},NESSI,Marie,2030-01-01,,,"],
            r"roster.csv:2: birth_date 2030-01-01 is in the future",
        ),
        ("", [], r"roster.csv:1: the file is empty"),
    ],
)
async def test_refusals_write_nothing(
    db: Database, settings: Settings, tmp_path: Path, header: str, lines: list[str], sentence: str
) -> None:
    with pytest.raises(InvalidInput, match=sentence):
        await _import(db, settings, roster(tmp_path, *lines, header=header))
    assert await _counts(db) == (0, 0, 0)


async def test_not_utf8_and_missing_file(db: Database, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + f"{MOTHER},NESSI,Hélène,1977-07-15,,,\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"latin1.csv:2: byte 0xe9 is not UTF-8"):
        await _import(db, settings, str(path))
    with pytest.raises(InvalidInput, match=r"nowhere.csv: no such file"):
        await _import(db, settings, str(tmp_path / "nowhere.csv"))


async def test_skip_invalid_reports_each_line(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = roster(
        tmp_path,
        GOOD[1],
        f"{MOTHER[:-2]}12,X,Y,1977-07-15,,,",
        GOOD[1],
        f"{CHILD},NESSI,Léa,2015-07-01,,,{CORSICAN}",
    )
    report = await _import(db, settings, path, skip_invalid=True)
    assert [where.rsplit(":", 1)[-1] for where, _ in report.skipped] == ["3", "4", "5"]
    assert "already appears on line 2" in report.skipped[1][1]
    assert "guardian INS" in report.skipped[2][1]
    assert report.added == 1 and "3 skipped" in report.summary()
    assert await _counts(db) == (1, 1, 0)
