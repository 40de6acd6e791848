"""Import a patient roster (CSV): INS, names, birth date, contact details, guardian.

Columns (header line, any order, comma or semicolon separated):
``ins, family_name, given_names, birth_date`` are required, ``email, phone,
guardian_ins`` optional. A new patient starts in the opposition window and
gets the mailbox ``<INS>@patient.<domain>``; a known one is updated. A
guardian must be in the file or already in the directory, and the patient
they act for must be a minor.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record
from mss.config import Settings
from mss.db import utcnow
from mss.directory.identifiers import normalise_address, normalise_ins, normalise_phone
from mss.directory.imports import (
    Entry,
    ImportReport,
    apply_entries,
    decode_text,
    operator,
    read_input,
    record_import,
    refuse_or_skip,
)
from mss.directory.store import add_guardian, create_patient, find_patient_by_ins
from mss.errors import InvalidInput

REQUIRED = ("ins", "family_name", "given_names", "birth_date")
OPTIONAL = ("email", "phone", "guardian_ins")
UPDATABLE = ("family_name", "given_names", "birth_date", "email", "phone")
ADULT_AGE = 18


@dataclass(frozen=True)
class PatientRow:
    """One checked line of the roster; ``columns`` says which optional fields the file has."""

    ins: str
    family_name: str
    given_names: str
    birth_date: dt.date
    email: str | None
    phone: str | None
    guardian_ins: str | None
    columns: frozenset[str]


def _header(reader: Iterator[list[str]], path: str) -> list[str]:
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise InvalidInput(
            "the file is empty; expected a header line: " + ",".join(REQUIRED + OPTIONAL),
            where=f"{path}:1",
        ) from None
    except csv.Error as exc:
        raise InvalidInput(f"the header line is not valid CSV: {exc}", where=f"{path}:1") from None
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if unknown:
        raise InvalidInput(
            f"unknown column {unknown[0]!r}; the columns are " + ", ".join(REQUIRED + OPTIONAL),
            where=f"{path}:1",
        )
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidInput(f"missing column(s) {', '.join(missing)}", where=f"{path}:1")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InvalidInput(f"column {repeated[0]!r} appears twice", where=f"{path}:1")
    return header


def _birth_date(text: str, today: dt.date) -> dt.date:
    try:
        born = dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        born = None
    if born is None:
        raise InvalidInput(f"birth_date {text!r} is not a date written YYYY-MM-DD")
    if born > today:
        raise InvalidInput(f"birth_date {text} is in the future")
    if born.year < 1900:
        raise InvalidInput(f"birth_date {text} is before 1900")
    return born


def _age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _row(values: dict[str, str], today: dt.date) -> PatientRow:
    ins = normalise_ins(values["ins"]) if values["ins"] else None
    if ins is None:
        raise InvalidInput("the ins column is empty")
    if not values["family_name"]:
        raise InvalidInput("the family_name column is empty")
    born = _birth_date(values["birth_date"], today)
    guardian = values.get("guardian_ins") or None
    if guardian is not None:
        guardian = normalise_ins(guardian)
        if guardian == ins:
            raise InvalidInput(f"patient {ins} is given as their own guardian")
        if _age(born, today) >= ADULT_AGE:
            raise InvalidInput(
                f"patient {ins} is {_age(born, today)} years old; guardians are "
                "recorded for minors only"
            )
    return PatientRow(
        ins=ins,
        family_name=values["family_name"],
        given_names=values["given_names"],
        birth_date=born,
        guardian_ins=guardian,
        email=normalise_address(values["email"]) if values.get("email") else None,
        phone=normalise_phone(values["phone"]) if values.get("phone") else None,
        columns=frozenset(values),
    )


def parse_patients(
    text: str, path: str, report: ImportReport, *, skip_invalid: bool, today: dt.date
) -> list[Entry[PatientRow]]:
    """Check every line of the roster; duplicates of an INS are refused."""
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True)
    header = _header(reader, path)
    entries: list[Entry[PatientRow]] = []
    seen: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidInput(f"not valid CSV: {exc}", where=f"{path}:{line}") from None
        if not any(field.strip() for field in fields):
            continue
        try:
            if len(fields) != len(header):
                raise InvalidInput(f"{len(fields)} fields but the header has {len(header)}")
            row = _row(
                {name: value.strip() for name, value in zip(header, fields, strict=True)}, today
            )
            if row.ins in seen:
                raise InvalidInput(f"INS {row.ins} already appears on line {seen[row.ins]}")
            seen[row.ins] = line
            entries.append(Entry(f"{path}:{line}", row))
        except InvalidInput as exc:
            refuse_or_skip(InvalidInput(exc.sentence, where=f"{path}:{line}"), report, skip_invalid)
    return _guardians_first(entries, path)


def _guardians_first(entries: list[Entry[PatientRow]], path: str) -> list[Entry[PatientRow]]:
    """Order rows so that a guardian listed in the file is imported before the minor."""
    by_ins = {entry.value.ins: entry for entry in entries}

    def depth(entry: Entry[PatientRow]) -> int:
        steps, current = 0, entry.value
        while current.guardian_ins in by_ins:
            current = by_ins[current.guardian_ins].value
            steps += 1
            if steps > len(by_ins):
                raise InvalidInput(
                    f"guardianship cycle through INS {entry.value.ins}", where=entry.where
                )
        return steps

    return sorted(entries, key=depth)


async def _apply(
    session: AsyncSession, settings: Settings, row: PatientRow, now: dt.datetime
) -> str:
    patient = await find_patient_by_ins(session, row.ins)
    added = patient is None
    changed: list[str] = []
    if patient is None:
        patient = await create_patient(
            session,
            settings,
            ins=row.ins,
            family_name=row.family_name,
            given_names=row.given_names,
            birth_date=row.birth_date,
            email=row.email,
            phone=row.phone,
            now=now,
        )
        _audit(session, "patient.created", patient.id)
    else:
        changed += [
            name
            for name in UPDATABLE
            if name in row.columns and getattr(patient, name) != getattr(row, name)
        ]
        for name in changed:
            setattr(patient, name, getattr(row, name))
        if changed:
            _audit(session, "patient.updated", patient.id, fields=changed)
    if row.guardian_ins is not None:
        guardian = await find_patient_by_ins(session, row.guardian_ins)
        if guardian is None:
            raise InvalidInput(
                f"guardian INS {row.guardian_ins} is neither a valid line of this "
                "file nor a patient of the directory"
            )
        if await add_guardian(session, guardian=guardian, minor=patient):
            _audit(session, "guardian.added", patient.id, guardian=guardian.ins)
            changed.append("guardian")
    await session.flush()
    return "added" if added else "updated" if changed else "unchanged"


def _audit(session: AsyncSession, action: str, patient_id: int, **detail: Any) -> None:
    record(
        session,
        action,
        actor_kind="operator",
        actor=operator(),
        patient_id=patient_id,
        source="mss directory import-patients",
        **detail,
    )


async def import_patients(
    session: AsyncSession,
    settings: Settings,
    path: str,
    *,
    skip_invalid: bool = False,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Import a roster CSV into the caller's transaction."""
    now = now or utcnow()
    report = ImportReport(source=path)
    text = decode_text(read_input(path), path)
    entries = parse_patients(text, path, report, skip_invalid=skip_invalid, today=now.date())
    await apply_entries(
        session,
        entries,
        lambda row: _apply(session, settings, row, now),
        report,
        skip_invalid=skip_invalid,
        description="patients",
    )
    record_import(session, "patients", report)
    return report
