"""FHIR directory import: the ANS samples alone and in a Bundle, idempotence, refusals."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mss.db import Database
from mss.directory.import_fhir import import_fhir
from mss.directory.models import Mailbox, MailboxKind, Organisation, OrganisationKind, Professional
from mss.directory.store import find_mailbox, find_professional_by_id_nat
from mss.errors import InvalidInput
from tests.fhir_directory_samples import (
    ANNUAIRE,
    API_MSS,
    bundle,
    hospital_bundle,
    mailbox,
    sample,
    write_json,
)


async def _import(db: Database, path: str, **kwargs: bool):  # type: ignore[no-untyped-def]
    async with db.write() as session:
        return await import_fhir(session, path, **kwargs)


async def _counts(db: Database) -> tuple[int, int, int]:
    async with db.read() as session:
        return tuple(
            [
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (Organisation, Professional, Mailbox)
            ]
        )  # type: ignore[return-value]


async def test_annuaire_sample_alone(db: Database, ans_data: Path) -> None:
    report = await _import(db, str(ans_data / ANNUAIRE))
    assert (report.added, report.updated, report.skipped) == (1, 0, [])
    # The ANS example's RPPS key does not hold: kept as published, said once.
    assert len(report.warnings) == 1 and "10102727017 fails its Luhn check" in report.warnings[0]
    async with db.read() as session:
        professional = await find_professional_by_id_nat(session, "810102727017")
        assert professional is not None
        assert (professional.family_name, professional.given_names) == ("CHATELIER", "David")
        assert professional.profession_code == "21"  # TRE_G15 qualification: pharmacien
        box = await find_mailbox(session, "DavidChatelier@pro.mssante.fr")
        assert box is not None and box.kind is MailboxKind.PER
        assert box.professional_id == professional.id and not box.red_list
        # The second telecom is an ordinary e-mail without the MSSanté extension.
        assert await find_mailbox(session, "davidchatelier@orange.fr") is None
    assert await _counts(db) == (0, 1, 1)


async def test_api_mss_sample_alone(db: Database, ans_data: Path) -> None:
    await _import(db, str(ans_data / API_MSS))
    async with db.read() as session:
        box = await find_mailbox(session, "jean-marie.dupont@infirmier.mssante.fr")
        assert box is not None and box.kind is MailboxKind.PER and box.red_list is False
        professional = await session.get(Professional, box.professional_id)
    assert professional is not None and professional.id_nat == "810003456789"


async def test_both_samples_in_a_bundle_then_again(
    db: Database, ans_data: Path, tmp_path: Path
) -> None:
    path = write_json(
        tmp_path / "bundle.json", bundle(sample(ans_data, ANNUAIRE), sample(ans_data, API_MSS))
    )
    first = await _import(db, path)
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    again = await _import(db, path)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert "nothing changed" in again.summary()
    assert await _counts(db) == (0, 2, 2)


async def test_hospital_bundle_links_roles_and_kinds(db: Database, tmp_path: Path) -> None:
    path = write_json(tmp_path / "hospital.json", hospital_bundle())
    report = await _import(db, path)
    assert report.warnings == [] and report.skipped == []
    assert await _counts(db) == (2, 2, 6)
    async with db.read() as session:
        martin = await find_professional_by_id_nat(session, "801234567897")
        hospital = (
            await session.scalars(select(Organisation).where(Organisation.finess == "750712184"))
        ).one()
        pharmacy = (
            await session.scalars(select(Organisation).where(Organisation.finess == "130786049"))
        ).one()
        app = await find_mailbox(session, "convocations@hopital-fictif.mssante.fr")
        pharmacy_box = await find_mailbox(session, "pharmacie@pharmacie-du-port.mssante.fr")
        hidden = await find_mailbox(session, "direction@hopital-fictif.mssante.fr")
    assert martin is not None and martin.organisation_id == hospital.id
    assert martin.profession_code == "10"
    assert hospital.kind is OrganisationKind.HOSPITAL and pharmacy.kind is OrganisationKind.PHARMACY
    assert app is not None and app.kind is MailboxKind.APP and app.organisation_id == hospital.id
    assert pharmacy_box is not None and pharmacy_box.pharmacy
    assert hidden is not None and hidden.red_list
    again = await _import(db, path)
    assert not again.changed


async def test_changed_name_and_red_list_are_updated(db: Database, tmp_path: Path) -> None:
    document = hospital_bundle()
    await _import(db, write_json(tmp_path / "a.json", document))
    changed = copy.deepcopy(document)
    martin = next(e["resource"] for e in changed["entry"] if e["resource"]["id"] == "pr-martin")
    martin["name"][0]["family"] = "MARTIN-DUBOIS"
    martin["telecom"] = [mailbox("claire.martin@hopital-fictif.mssante.fr", "PER", red_list=True)]
    report = await _import(db, write_json(tmp_path / "b.json", changed))
    assert (report.added, report.updated) == (0, 1)
    async with db.read() as session:
        professional = await find_professional_by_id_nat(session, "801234567897")
        box = await find_mailbox(session, "claire.martin@hopital-fictif.mssante.fr")
    assert professional is not None and professional.family_name == "MARTIN-DUBOIS"
    assert box is not None and box.red_list


async def test_malformed_json_is_refused_with_its_line(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n "resourceType": "Practitioner",\n "id": "x"\n "name": []\n}\n')
    with pytest.raises(InvalidInput, match=r"broken.json:4: not valid JSON: Expecting ','"):
        await _import(db, str(path))
    assert await _counts(db) == (0, 0, 0)


@pytest.mark.parametrize(
    "document, sentence",
    [
        ([1, 2], "not a FHIR resource"),
        ({"resourceType": "Patient", "id": "p"}, "resourceType 'Patient' is not imported"),
        (
            {"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]},
            "entry 1: this Bundle entry has no resource",
        ),
    ],
)
async def test_not_a_directory_file(
    db: Database, tmp_path: Path, document: object, sentence: str
) -> None:
    with pytest.raises(InvalidInput, match=sentence):
        await _import(db, write_json(tmp_path / "x.json", document))


def _broken_hospital() -> dict:  # type: ignore[type-arg]
    document = hospital_bundle()
    durand = next(e["resource"] for e in document["entry"] if e["resource"]["id"] == "pr-durand")
    durand["identifier"][0]["value"] = "8997003679"  # too short
    return document


async def test_one_bad_entry_refuses_the_whole_file(db: Database, tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInput, match=r"entry 3 \(Practitioner/pr-durand\): idNat '8997003679'"
    ):
        await _import(db, write_json(tmp_path / "bad.json", _broken_hospital()))
    assert await _counts(db) == (0, 0, 0)


async def test_skip_invalid_imports_the_rest(db: Database, tmp_path: Path) -> None:
    report = await _import(
        db, write_json(tmp_path / "bad.json", _broken_hospital()), skip_invalid=True
    )
    assert [where.rsplit(": ", 1)[-1] for where, _ in report.skipped] == [
        "entry 3 (Practitioner/pr-durand)"
    ]
    assert "idNat '8997003679'" in report.skipped[0][1]
    assert await _counts(db) == (2, 1, 5)


async def test_mailbox_given_to_two_owners_is_refused(db: Database, tmp_path: Path) -> None:
    document = hospital_bundle()
    durand = next(e["resource"] for e in document["entry"] if e["resource"]["id"] == "pr-durand")
    durand["telecom"] = [mailbox("claire.martin@hopital-fictif.mssante.fr", "PER")]
    with pytest.raises(
        InvalidInput,
        match="mailbox claire.martin@hopital-fictif.mssante.fr is already given to another owner",
    ):
        await _import(db, write_json(tmp_path / "dup.json", document))
    assert await _counts(db) == (0, 0, 0)


async def test_mailbox_owned_by_someone_else_in_the_directory(
    db: Database, ans_data: Path, tmp_path: Path
) -> None:
    await _import(db, str(ans_data / API_MSS))
    other = sample(ans_data, API_MSS)
    other["identifier"][0]["value"] = "801234567897"
    with pytest.raises(InvalidInput, match="already belongs to another owner"):
        await _import(db, write_json(tmp_path / "other.json", other))
    assert await _counts(db) == (0, 1, 1)


async def test_duplicate_practitioner_and_unknown_reference(
    db: Database, ans_data: Path, tmp_path: Path
) -> None:
    twice = bundle(sample(ans_data, API_MSS), sample(ans_data, API_MSS))
    with pytest.raises(InvalidInput, match="Practitioner 810003456789 is already given by"):
        await _import(db, write_json(tmp_path / "twice.json", twice))
    role = {
        "resourceType": "PractitionerRole",
        "id": "r",
        "practitioner": {"reference": "Practitioner/334081"},
    }
    with pytest.raises(InvalidInput, match="Practitioner/334081 is not a resource of this file"):
        await _import(db, write_json(tmp_path / "role.json", role))
    assert await _counts(db) == (0, 0, 0)


async def test_role_by_identifier_links_an_imported_practitioner(
    db: Database, ans_data: Path, tmp_path: Path
) -> None:
    await _import(db, str(ans_data / API_MSS))
    role = {
        "resourceType": "PractitionerRole",
        "id": "r",
        "practitioner": {
            "identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810003456789"}
        },
        "code": [{"coding": [{"system": "urn:oid:1.2.250.1.71.1.2.7", "code": "60"}]}],
    }
    report = await _import(db, write_json(tmp_path / "role.json", role))
    assert report.updated == 1
    async with db.read() as session:
        professional = await find_professional_by_id_nat(session, "810003456789")
    assert professional is not None and professional.profession_code == "60"


async def test_legacy_mailbox_extension(db: Database, ans_data: Path, tmp_path: Path) -> None:
    practitioner = sample(ans_data, API_MSS)
    del practitioner["telecom"]
    practitioner["extension"] = [
        {
            "url": "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss",
            "extension": [
                {"url": "value", "valueString": "jm.dupont@infirmier.mssante.fr"},
                {"url": "publication", "valueBoolean": True},
            ],
        }
    ]
    await _import(db, write_json(tmp_path / "legacy.json", practitioner))
    async with db.read() as session:
        box = await find_mailbox(session, "jm.dupont@infirmier.mssante.fr")
    assert box is not None and box.kind is MailboxKind.PER and box.red_list
