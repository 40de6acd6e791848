"""Every XDM and CDA sample of tests/data/ans parsed with its expected metadata.

Golden files in tests/golden/{xdm,cda}/ hold the whole parse; the explicit
asserts below are the facts a reader checks by hand (README §1 and §2).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dmp_bridge.cda import cross_check, narrative_html, read_cda_header
from dmp_bridge.xdm import read_xdm
from tests.dmp_golden import assert_golden

XDM_SAMPLES = ["directproject_samplexdm.zip", "directproject_xdm_flat-paths.zip"]
CDA_SAMPLES = ["tddui_export-dui_v1.0.1.xml", "tddui_exppat2_2024-06_draft.xml"]


@pytest.mark.parametrize("name", XDM_SAMPLES)
def test_xdm_sample_matches_golden(ans_data: Path, name: str) -> None:
    package = read_xdm((ans_data / "xdm" / name).read_bytes())
    assert_golden(f"xdm/{name.removesuffix('.zip')}.json", package)


@pytest.mark.parametrize("name", CDA_SAMPLES)
def test_cda_sample_matches_golden(ans_data: Path, name: str) -> None:
    data = (ans_data / "cda" / name).read_bytes()
    assert_golden(f"cda/{name.removesuffix('.xml')}.json", read_cda_header(data))
    assert_golden(f"cda/{name.removesuffix('.xml')}.narrative.html", narrative_html(data))


def test_samplexdm_wrapping_folder_no_uri_and_malformed_cx(ans_data: Path) -> None:
    package = read_xdm((ans_data / "xdm" / "directproject_samplexdm.zip").read_bytes())
    (doc,) = package.documents
    assert doc.path == "samplexdm/IHE_XDM/SUBSET01/Document01.xml"
    assert doc.uri is None
    assert any(
        "has no URI slot; file 'samplexdm/IHE_XDM/SUBSET01/Document01.xml' found by its id" in w
        for w in package.warnings
    )
    assert doc.hash == "2f016bdeba83855ec76bd1102d9da6a79590f1a9" and doc.size == 68226
    assert doc.type_code is not None and doc.type_code.code == "34133-9"
    assert doc.creation_time == datetime(2005, 12, 24, tzinfo=UTC)
    # The DocumentEntry CX misses one '^'; the SubmissionSet one is correct.
    assert [(r.code, r.sentence) for r in doc.refusals] == [
        (
            906,
            (
                "The document entry 'Document01' has a malformed XDSDocumentEntry.patientId "
                "'111111111^^&2.16.840.1.113883.4.1&ISO': the assigning authority "
                "'&2.16.840.1.113883.4.1&ISO' sits in component 3 instead of 4 "
                "(expected ID^^^&OID&ISO)."
            ),
        )
    ]
    (submission,) = package.submission_sets
    assert submission.patient_id.id == "111111111"
    assert submission.patient_id.authority_oid == "2.16.840.1.113883.4.1"
    assert any("CCD.xsl: file of subset" in w for w in package.warnings)


def test_flat_paths_package_is_reported_not_guessed(ans_data: Path) -> None:
    """Decision: the flat zip is readable (files = subset prefix + URI); its null patient ids
    make the document unfileable with 903, and every oddity is a warning."""
    package = read_xdm((ans_data / "xdm" / "directproject_xdm_flat-paths.zip").read_bytes())
    (doc,) = package.documents
    assert doc.path == "IHE_XDM/SUBSET01871efced-488f-4699-b38d-015791e7ef04.txt"
    assert doc.data == b"Text" and doc.mime_type == "text/plain"
    assert [(r.code, r.sentence) for r in package.refusals] == [
        (
            903,
            (
                "The document entry '871efced-488f-4699-b38d-015791e7ef04' has no patient "
                "identifier "
                "(XDSDocumentEntry.patientId: it is empty; sourcePatientId is 'null^^^&null&ISO'), "
                "hence no INS."
            ),
        )
    ]
    warnings = "\n".join(package.warnings)
    assert "flat zip paths, no separator after the subset folder 'IHE_XDM/SUBSET01'" in warnings
    assert "SubmissionSet sourceId 'TODO' is not an OID" in warnings
    assert "uniqueId '71aeb81a-c2a5-4ba5-b036-f7b334278bcc' is not an OID" in warnings
    assert "XDSSubmissionSet.patientId '' is unusable: it is empty" in warnings


def test_dui_header_facts_and_wrong_ins_key(ans_data: Path) -> None:
    header = read_cda_header((ans_data / "cda" / "tddui_export-dui_v1.0.1.xml").read_bytes())
    assert header.document_id.root == "1.2.250.2345.3245.13.58130.1"
    assert header.document_id.extension is None
    assert header.document_id.xds_unique_id == "1.2.250.2345.3245.13.58130.1"
    assert header.set_id is not None and header.set_id.root == "1.2.250.2345.3245.13.58130"
    assert header.version_number == 1
    assert header.code is not None and (header.code.code, header.code.scheme) == (
        "EXPORT_DUI",
        "1.2.250.1.213.1.1.4.12",
    )
    assert header.effective_time == datetime(
        2023, 4, 14, 11, 15, tzinfo=timezone(timedelta(hours=2))
    )
    assert header.patient.ins is not None
    assert header.patient.ins.matricule == "147720425367411"
    assert header.patient.ins.oid == "1.2.250.1.213.1.4.8"
    assert header.patient.ins.key_ok is False  # 97 - (1477204253674 mod 97) = 30, not 11
    assert header.warnings == ("INS 147720425367411 has a wrong NIR key (flagged, not refused).",)
    assert header.refusals == ()
    name = header.patient.names[0]
    assert (name.birth_family, name.birth_given, name.used_family, name.used_given) == (
        "DUPONT",
        "Jean Stéphane Patrick",
        "DUPONT",
        "Jean",
    )
    assert header.patient.birth_time == date(1947, 4, 3) and header.patient.gender == "M"
    (author,) = header.authors
    assert author.id is not None and author.id.extension == "3480787529/1453"
    assert header.legal_authenticator is not None
    assert header.legal_authenticator.id == author.id
    assert header.custodian is not None and header.custodian.id is not None
    assert header.custodian.id.extension == "1480787529"
    assert header.healthcare_facility_code is not None
    assert header.healthcare_facility_code.code == "SA41"
    assert header.level == 3


def test_exppat2_header_facts(ans_data: Path) -> None:
    header = read_cda_header((ans_data / "cda" / "tddui_exppat2_2024-06_draft.xml").read_bytes())
    assert header.document_id.xds_unique_id == "E20C5584-4278-11EE-BE56-0242AC120002^0001"
    assert header.code is not None and header.code.code == "EXPPAT_2"
    assert header.effective_time == datetime(
        2023, 8, 24, 11, 17, tzinfo=timezone(timedelta(hours=1))
    )
    assert header.patient.ins is not None and header.patient.ins.key_ok is True
    assert [(i.root, i.extension) for i in header.patient.ids] == [
        ("1.2.250.1.213.1.4.8", "277076322082910"),
        ("1.2.3.4.567.8.9.11", "1234567890123"),
    ]
    name = header.patient.names[0]
    assert (name.birth_family, name.used_family) == ("NESSI", "DECOURCY")
    assert header.authors[0].id_nat == "801234567897"
    assert header.legal_authenticator is not None and header.legal_authenticator.id is not None
    assert header.legal_authenticator.id.extension == "1.2.250.1.71.4.2.2/24.30"
    assert header.custodian is not None and header.custodian.id is not None
    assert header.custodian.id.extension == "1750803447"
    assert header.title == "Document transfert de données DUI"
    assert header.refusals == () and header.warnings == ()


def test_ccd_inside_samplexdm(ans_data: Path) -> None:
    package = read_xdm((ans_data / "xdm" / "directproject_samplexdm.zip").read_bytes())
    doc = package.documents[0]
    header = read_cda_header(doc.data)
    assert_golden("cda/samplexdm_Document01.json", header)
    assert header.code is not None and header.code.code == "34133-9"
    assert header.document_id.root == "db734647-fc99-424c-a864-7e3cda82e703"
    assert [(e.code, e.sentence) for e in header.refusals] == [
        (
            903,
            (
                "The CDA document carries no INS among its patient ids "
                "(GSIHealth/1111111111); an INS "
                "is an id under 1.2.250.1.213.1.4.8, 1.2.250.1.213.1.4.10, 1.2.250.1.213.1.4.13."
            ),
        )
    ]
    html = narrative_html(doc.data)
    assert html.startswith("<section><h2>Summary Purpose</h2>")
    # The US sample disagrees with its own metadata: reported, code by code.
    assert [e.code for e in cross_check(doc, header)] == [906, 903, 906]
