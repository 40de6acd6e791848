"""Import FHIR R4 Practitioner, PractitionerRole and Organization resources (JSON).

A file holds one resource or a Bundle of them (Annuaire Santé extracts,
the MSS directory-feed API). Practitioners are keyed by idNat (IDNPS
``urn:oid:1.2.250.1.71.4.2.1``, or RPPS), organisations by FINESS; a
PractitionerRole links the two and may give the profession (TRE_G15).
Mailboxes are the MSSanté ContactPoints read by ``fhir_mailbox``.

Numbers published by the national directory are trusted: a wrong RPPS or
FINESS Luhn key there (the ANS's own example 10102727017 has one) is kept
and reported as a warning, while a malformed number refuses the entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.fhir_mailbox import MailboxInfo, read_mailboxes
from mss.directory.identifiers import (
    ADELI_SYSTEMS,
    FINESS_SYSTEMS,
    IDNPS_SYSTEM,
    IDNST_SYSTEM,
    RPPS_SYSTEMS,
    TRE_G15_SYSTEM,
    WrongCheckKey,
    normalise_finess,
    normalise_id_nat,
    normalise_profession_code,
)
from mss.directory.import_fhir_apply import (
    OrganisationData,
    PractitionerData,
    RoleData,
    apply_organisation,
    apply_practitioner,
    apply_role,
)
from mss.directory.imports import (
    Entry,
    ImportReport,
    apply_entries,
    decode_text,
    read_input,
    record_import,
    refuse_or_skip,
)
from mss.directory.models import OrganisationKind
from mss.errors import InvalidInput

TYPES = ("Organization", "Practitioner", "PractitionerRole")
# TRE_R02-SecteurActivite codes that tell the kind of an organisation.
SECTORS = {
    "SA01": OrganisationKind.HOSPITAL,
    "SA02": OrganisationKind.HOSPITAL,
    "SA03": OrganisationKind.HOSPITAL,
    "SA04": OrganisationKind.HOSPITAL,
    "SA07": OrganisationKind.PRACTICE,
    "SA08": OrganisationKind.PRACTICE,
    "SA09": OrganisationKind.PRACTICE,
    "SA25": OrganisationKind.LABORATORY,
    "SA33": OrganisationKind.PHARMACY,
}


@dataclass
class _File:
    """Everything read from the file, in the order it must be applied."""

    path: str
    report: ImportReport
    skip_invalid: bool
    refs: dict[str, str] = field(default_factory=dict)  # "Practitioner/12" or fullUrl -> key
    organisations: list[Entry[OrganisationData]] = field(default_factory=list)
    practitioners: list[Entry[PractitionerData]] = field(default_factory=list)
    roles: list[Entry[RoleData]] = field(default_factory=list)
    owners: dict[str, tuple[str, str]] = field(default_factory=dict)  # address -> (owner, where)


def load_json(data: bytes, path: str) -> Any:
    """The parsed JSON, or the line and reason it is not JSON."""
    try:
        return json.loads(decode_text(data, path))
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"not valid JSON: {exc.msg} (column {exc.colno})", where=f"{path}:{exc.lineno}"
        ) from None
    except RecursionError:
        raise InvalidInput("JSON nested too deeply", where=path) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InvalidInput(f"not valid JSON: {exc}", where=path) from None


def _resources(
    document: Any, path: str, report: ImportReport
) -> list[tuple[str, dict[str, Any], str]]:
    """(where, resource, fullUrl) for each supported resource of the file."""
    if not isinstance(document, dict) or "resourceType" not in document:
        raise InvalidInput(
            "not a FHIR resource: expected a JSON object with resourceType", where=path
        )
    kind = document["resourceType"]
    if kind in TYPES:
        return [(f"{path}: {kind}/{document.get('id', '?')}", document, "")]
    if kind != "Bundle":
        raise InvalidInput(
            f"resourceType {kind!r} is not imported; expected Practitioner, "
            "PractitionerRole, Organization or a Bundle of them",
            where=path,
        )
    entries = document.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidInput("Bundle.entry is not a list", where=path)
    found = []
    for number, item in enumerate(entries, start=1):
        resource = item.get("resource") if isinstance(item, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            raise InvalidInput("this Bundle entry has no resource", where=f"{path}: entry {number}")
        where = f"{path}: entry {number} ({resource['resourceType']}/{resource.get('id', '?')})"
        if resource["resourceType"] in TYPES:
            found.append((where, resource, str(item.get("fullUrl", ""))))
        else:
            report.warn(
                f"{where}: ignored, only Practitioner, PractitionerRole "
                "and Organization are imported"
            )
    return found


def _identifier_codes(identifier: dict[str, Any]) -> set[str]:
    codings = (identifier.get("type") or {}).get("coding", [])
    return {str(c.get("code")) for c in codings if isinstance(c, dict)}


def _trusted(normalise: Any, value: str, where: str, report: ImportReport) -> str:
    try:
        return str(normalise(value))
    except WrongCheckKey as exc:
        report.warn(f"{where}: {exc.sentence}; kept as the directory publishes it")
        return str(normalise(value, check_key=False))


def _id_nat(identifiers: list[Any], where: str, report: ImportReport) -> str | None:
    found: set[str] = set()
    for ident in identifiers:
        if not isinstance(ident, dict) or not ident.get("value"):
            continue
        system, value, codes = ident.get("system"), str(ident["value"]), _identifier_codes(ident)
        if system == IDNPS_SYSTEM or "IDNPS" in codes:
            found.add(_trusted(normalise_id_nat, value, where, report))
        elif system in RPPS_SYSTEMS or "RPPS" in codes:
            found.add(_trusted(normalise_id_nat, "8" + value, where, report))
        elif system in ADELI_SYSTEMS or "ADELI" in codes:
            found.add(normalise_id_nat("0" + value))
    if len(found) > 1:
        raise InvalidInput(f"identifiers disagree on the idNat: {', '.join(sorted(found))}")
    return found.pop() if found else None


def _finess(identifiers: list[Any], where: str, report: ImportReport) -> str | None:
    found: set[str] = set()
    for ident in identifiers:
        if not isinstance(ident, dict) or not ident.get("value"):
            continue
        system, value, codes = ident.get("system"), str(ident["value"]), _identifier_codes(ident)
        if system in FINESS_SYSTEMS or codes & {"FINEG", "FINEJ"}:
            found.add(_trusted(normalise_finess, value, where, report))
        elif (
            (system == IDNST_SYSTEM or "IDNST" in codes)
            and value.startswith("1")
            and len(value) == 10
        ):
            found.add(_trusted(normalise_finess, value[1:], where, report))
    if len(found) > 1:
        raise InvalidInput(f"identifiers disagree on the FINESS number: {', '.join(sorted(found))}")
    return found.pop() if found else None


def _profession(concepts: list[Any]) -> str:
    for concept in concepts:
        for coding in (concept or {}).get("coding", []) if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("system") in (
                TRE_G15_SYSTEM,
                "urn:oid:1.2.250.1.71.1.2.7",
            ):
                return normalise_profession_code(str(coding.get("code", "")))
    return ""


def _name(resource: dict[str, Any]) -> tuple[str, str]:
    names = [n for n in resource.get("name", []) or [] if isinstance(n, dict)]
    names.sort(key=lambda n: {"official": 0, "usual": 1}.get(str(n.get("use")), 2))
    for name in names:
        given = " ".join(str(g) for g in name.get("given", []) or [])
        if name.get("family"):
            return str(name["family"]).strip(), given.strip()
    raise InvalidInput("the Practitioner has no family name (name.family)")


def _claim(file: _File, mailboxes: tuple[MailboxInfo, ...], owner: str, where: str) -> None:
    """Refuse a mailbox address that the file gives to two different owners."""
    for mailbox in mailboxes:
        previous = file.owners.setdefault(mailbox.address, (owner, where))
        if previous[0] != owner:
            raise InvalidInput(
                f"mailbox {mailbox.address} is already given to another owner by {previous[1]}"
            )


def _organisation(file: _File, where: str, resource: dict[str, Any]) -> OrganisationData:
    finess = _finess(resource.get("identifier", []) or [], where, file.report)
    if finess is None:
        raise InvalidInput(
            "the Organization has no FINESS identifier (system "
            "https://finess.esante.gouv.fr, or IDNST 1 + FINESS)"
        )
    if not str(resource.get("name", "")).strip():
        raise InvalidInput(f"the Organization with FINESS {finess} has no name")
    codes = [
        c.get("code")
        for t in resource.get("type", []) or []
        if isinstance(t, dict)
        for c in t.get("coding", []) or []
        if isinstance(c, dict)
    ]
    kind = next(
        (SECTORS[c] for c in codes if isinstance(c, str) and c in SECTORS), None
    )  # a code may be anything
    data = OrganisationData(
        finess, str(resource["name"]).strip(), kind, tuple(read_mailboxes(resource))
    )
    _claim(file, data.mailboxes, "org:" + finess, where)
    return data


def _practitioner(file: _File, where: str, resource: dict[str, Any]) -> PractitionerData:
    id_nat = _id_nat(resource.get("identifier", []) or [], where, file.report)
    if id_nat is None:
        raise InvalidInput(f"the Practitioner has no IDNPS ({IDNPS_SYSTEM}) or RPPS identifier")
    family, given = _name(resource)
    qualifications = [
        q.get("code") for q in resource.get("qualification", []) or [] if isinstance(q, dict)
    ]
    data = PractitionerData(
        id_nat, family, given, _profession(qualifications), tuple(read_mailboxes(resource))
    )
    _claim(file, data.mailboxes, "pro:" + id_nat, where)
    return data


def _resolve(file: _File, reference: Any, kind: str, where: str) -> str | None:
    """The key (idNat or FINESS) a reference points at, in the file or by identifier."""
    if not isinstance(reference, dict):
        return None
    target = str(reference.get("reference", ""))
    if target:
        short = "/".join(target.rstrip("/").split("/")[-2:])
        key = file.refs.get(target, file.refs.get(short))
        if key == "":
            raise InvalidInput(f"{kind} reference {target} points at an entry that was refused")
        if key is None:
            raise InvalidInput(
                f"{kind} reference {target} is not a resource of this file; "
                "give it by identifier to link to one already imported"
            )
        return key
    identifier = reference.get("identifier")
    if isinstance(identifier, dict):
        if kind == "Practitioner":
            return _id_nat([identifier], where, file.report)
        return _finess([identifier], where, file.report)
    return None


def _role(file: _File, where: str, resource: dict[str, Any]) -> RoleData:
    id_nat = _resolve(file, resource.get("practitioner"), "Practitioner", where)
    if id_nat is None:
        raise InvalidInput("the PractitionerRole has no practitioner")
    finess = _resolve(file, resource.get("organization"), "Organization", where)
    data = RoleData(
        id_nat, finess, _profession(resource.get("code", []) or []), tuple(read_mailboxes(resource))
    )
    _claim(file, data.mailboxes, "pro:" + id_nat, where)
    return data


def _read(file: _File, document: Any) -> None:
    resources = _resources(document, file.path, file.report)
    seen: dict[str, str] = {}
    ordered = sorted(resources, key=lambda r: TYPES.index(r[1]["resourceType"]))
    for where, resource, full_url in ordered:
        kind = resource["resourceType"]
        target: list[Any]  # the file's list of entries of this kind
        try:
            if kind == "Organization":
                data: Any = _organisation(file, where, resource)
                key, target = data.finess, file.organisations
            elif kind == "Practitioner":
                data = _practitioner(file, where, resource)
                key, target = data.id_nat, file.practitioners
            else:
                data, key, target = _role(file, where, resource), None, file.roles
            if key is not None:
                if key in seen:
                    raise InvalidInput(f"{kind} {key} is already given by {seen[key]}")
                seen[key] = where
                file.refs[f"{kind}/{resource.get('id')}"] = key
                if full_url:
                    file.refs[full_url] = key
            target.append(Entry(where, data))
        except InvalidInput as exc:
            if kind != "PractitionerRole":
                file.refs.setdefault(f"{kind}/{resource.get('id')}", "")
            refuse_or_skip(InvalidInput(exc.sentence, where=where), file.report, file.skip_invalid)


def parse_fhir(data: bytes, path: str, report: ImportReport, *, skip_invalid: bool) -> _File:
    """Read and check the whole file before anything is written; InvalidInput with its place."""
    file = _File(path, report, skip_invalid)
    _read(file, load_json(data, path))
    return file


async def import_fhir(
    session: AsyncSession, path: str, *, skip_invalid: bool = False
) -> ImportReport:
    """Import a FHIR JSON file into the caller's transaction."""
    report = ImportReport(source=path)
    file = parse_fhir(read_input(path), path, report, skip_invalid=skip_invalid)
    await apply_entries(
        session,
        file.organisations,
        lambda d: apply_organisation(session, d),
        report,
        skip_invalid=skip_invalid,
        description="organisations",
    )
    await apply_entries(
        session,
        file.practitioners,
        lambda d: apply_practitioner(session, d),
        report,
        skip_invalid=skip_invalid,
        description="practitioners",
    )
    await apply_entries(
        session,
        file.roles,
        lambda d: apply_role(session, d),
        report,
        skip_invalid=skip_invalid,
        description="roles",
    )
    record_import(session, "fhir", report)
    return report
