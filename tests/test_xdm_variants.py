"""French XDM packages built in memory, one test per quirk of README §6."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from dmp_bridge.cda import cross_check, read_cda_header
from dmp_bridge.cda_crosscheck import agreed_creation_time
from dmp_bridge.errors import XdmError
from dmp_bridge.xdm import read_xdm
from tests.xdm_factory import (
    HL7_CONF,
    IDNAT,
    INS,
    INS_TEST_OID,
    INS_WRONG_KEY,
    PDF,
    SIGNATURE_ID,
    TRE_A07,
    DocSpec,
    XdmSpec,
    make_cda,
    make_xdm,
    package_entries,
    zip_bytes,
)

OTHER_INS = "185077512345608"  # another patient, key correct


def test_default_french_package_reads_every_field() -> None:
    package = read_xdm(make_xdm())
    assert package.warnings == () and package.refusals == ()
    (doc,) = package.documents
    assert doc.entry_uuid == "urn:uuid:9a0b1c2d-0001-4000-8000-000000000001"
    assert doc.unique_id == "1.2.250.1.999.1.1.20240101^42"
    assert (doc.patient_id.id, doc.patient_id.authority_oid, doc.patient_id.id_type) == (
        INS,
        INS_TEST_OID,
        "NH",
    )
    assert doc.ins is not None and doc.ins.key_ok is True
    assert doc.class_code is not None and doc.class_code.code == "10"
    assert doc.type_code is not None and (doc.type_code.code, doc.type_code.scheme) == (
        "11488-4",
        "2.16.840.1.113883.6.1",
    )
    assert doc.format_code is not None and doc.format_code.code == "urn:ihe:pcc:xds-ms:2007"
    assert [(c.code, c.scheme) for c in doc.confidentiality_codes] == [("N", HL7_CONF)]
    assert doc.creation_time == datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    assert doc.service_start_time == datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
    assert doc.service_stop_time == datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    assert (doc.mime_type, doc.title, doc.language_code) == (
        "text/xml",
        "Compte rendu de consultation",
        "fr-FR",
    )
    assert doc.hash == hashlib.sha1(doc.data).hexdigest() and doc.size == len(doc.data)
    assert doc.path == "IHE_XDM/SUBSET01/DOC0001.XML" and doc.uri == "DOC0001.XML"
    author = doc.author
    assert author is not None and author.id_nat == IDNAT
    assert author.person is not None and (author.person.family, author.person.given) == (
        "MARTIN",
        "Jean",
    )
    assert author.person.id_type == "IDNPS"
    (institution,) = author.institutions
    assert (institution.name, institution.id, institution.authority_oid, institution.id_type) == (
        "Cabinet Martin",
        "31750803447",
        "1.2.250.1.71.4.2.2",
        "IDNST",
    )
    assert [(r.code, r.display) for r in author.roles] == [("10", "Médecin")]
    assert [s.code for s in author.specialties] == ["SM26"]
    (submission,) = package.submission_sets
    assert submission.unique_id == "1.2.250.1.999.5.20240115"
    assert submission.source_id == "1.2.250.1.999"
    assert submission.patient_id.id == INS
    assert submission.submission_time == datetime(2024, 1, 15, 9, 32, tzinfo=UTC)
    assert submission.intended_recipients[0].endswith(f"{INS}@patient.mssante.fr")
    assert submission.authors[0].id_nat == IDNAT
    header = read_cda_header(doc.data)
    assert cross_check(doc, header) == []


@pytest.mark.parametrize("subset", ["SUBSET01", "SS000001", "LOT_42"])
@pytest.mark.parametrize("wrap", [None, "KA202401"])
def test_any_subset_folder_and_wrapping_folder(subset: str, wrap: str | None) -> None:
    package = read_xdm(make_xdm(XdmSpec(subset=subset, wrap=wrap)))
    top = f"{wrap}/" if wrap else ""
    assert package.documents[0].path == f"{top}IHE_XDM/{subset}/DOC0001.XML"
    assert package.documents[0].subset == f"{top}IHE_XDM/{subset}"
    assert package.warnings == ()


def test_flat_paths_resolved_by_prefix_and_warned() -> None:
    package = read_xdm(make_xdm(XdmSpec(flat=True)))
    assert package.documents[0].path == "IHE_XDM/SUBSET01DOC0001.XML"
    assert package.warnings == (
        (
            "IHE_XDM/SUBSET01METADATA.XML: flat zip paths, no separator after the subset folder "
            "'IHE_XDM/SUBSET01'; files are resolved as 'IHE_XDM/SUBSET01' + URI."
        ),
    )


def test_names_in_any_case() -> None:
    entries = {
        name.replace("METADATA.XML", "metadata.xml").replace("IHE_XDM", "ihe_xdm"): data
        for name, data in package_entries(XdmSpec()).items()
    }
    package = read_xdm(zip_bytes(entries))
    assert package.documents[0].path == "ihe_xdm/SUBSET01/DOC0001.XML"


def test_uri_matching_only_ignoring_case_is_warned() -> None:
    entries = {
        name.replace("DOC0001.XML", "doc0001.xml"): data
        for name, data in package_entries(XdmSpec()).items()
    }
    package = read_xdm(zip_bytes(entries))
    assert package.documents[0].path == "IHE_XDM/SUBSET01/doc0001.xml"
    assert package.warnings == (
        (
            "IHE_XDM/SUBSET01/METADATA.XML: URI 'DOC0001.XML' matched the "
            "file 'IHE_XDM/SUBSET01/doc0001.xml' only ignoring case."
        ),
    )


def test_readme_and_index_are_optional() -> None:
    package = read_xdm(make_xdm(XdmSpec(readme=False)))
    assert len(package.documents) == 1 and package.warnings == ()


def test_metadata_with_bom_and_without_declaration() -> None:
    package = read_xdm(make_xdm(XdmSpec(bom=True, declaration=False)))
    assert package.documents[0].unique_id == "1.2.250.1.999.1.1.20240101^42"
    assert package.warnings == ()


def test_undeclared_prefix_is_repaired_and_said() -> None:
    """Decision: bind the root prefix to lcm 3.0 and the default namespace to rim 3.0."""
    package = read_xdm(make_xdm(XdmSpec(undeclared_prefix=True)))
    assert package.documents[0].ins is not None
    assert package.warnings == (
        (
            "IHE_XDM/SUBSET01/METADATA.XML: no namespace declared; repaired by binding the prefix "
            "'ns3' to lcm 3.0 and the default namespace to rim 3.0."
        ),
    )


def test_undeclared_prefix_beyond_the_known_case_is_refused() -> None:
    entries = package_entries(XdmSpec(undeclared_prefix=True))
    path = "IHE_XDM/SUBSET01/METADATA.XML"
    entries[path] = entries[path].replace(b"<RegistryObjectList>", b"<rim:RegistryObjectList>")
    entries[path] = entries[path].replace(b"</RegistryObjectList>", b"</rim:RegistryObjectList>")
    with pytest.raises(XdmError) as caught:
        read_xdm(zip_bytes(entries))
    assert caught.value.code == 906
    assert caught.value.sentence == (
        "IHE_XDM/SUBSET01/METADATA.XML is not well-formed XML: unbound prefix (line 1, column 135)."
    )


def test_dsg_signature_is_recorded_not_filed() -> None:
    package = read_xdm(make_xdm(XdmSpec(signature=True)))
    assert len(package.documents) == 1
    (signature,) = package.signatures
    assert signature.entry_uuid == SIGNATURE_ID
    assert signature.path == "IHE_XDM/SUBSET01/SIGN_1.XML"
    assert signature.signs == ("urn:uuid:9a0b1c2d-5555-4000-8000-000000000055",)
    assert signature.data.startswith(b"<Signature")
    assert package.warnings == ()


def test_several_documents_cda_and_pdf() -> None:
    pdf = DocSpec(
        content=PDF,
        file_name="DOC0002.PDF",
        mime_type="application/pdf",
        entry_id="urn:uuid:9a0b1c2d-0002-4000-8000-000000000002",
        unique_id="1.2.250.1.999.1.2",
        format_code=("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3"),
    )
    package = read_xdm(make_xdm(XdmSpec(documents=[DocSpec(), pdf])))
    assert [d.mime_type for d in package.documents] == ["text/xml", "application/pdf"]
    assert package.documents[1].data == PDF


def test_replacement_action_c_with_rplc() -> None:
    old_entry = "urn:uuid:9a0b1c2d-0000-4000-8000-0000000000aa"
    doc = DocSpec(
        content=make_cda(rplc_parent="1.2.250.1.999.1.1.20231201", version=2),
        action="C",
        replaces=old_entry,
    )
    package = read_xdm(make_xdm(XdmSpec(documents=[doc])))
    entry = package.documents[0]
    assert (entry.action, entry.replaces) == ("C", old_entry)
    header = read_cda_header(entry.data)
    assert header.replaces is not None and header.replaces.root == "1.2.250.1.999.1.1.20231201"
    assert cross_check(entry, header) == []


def test_replacement_without_cda_parent_is_reported() -> None:
    package = read_xdm(make_xdm(XdmSpec(documents=[DocSpec(action="C")])))
    entry = package.documents[0]
    errors = cross_check(entry, read_cda_header(entry.data))
    assert [(e.code, e.sentence) for e in errors] == [
        (
            906,
            (
                "The document entry 'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' asks for a "
                "replacement (action C) but its CDA has no relatedDocument typeCode=RPLC "
                "naming the "
                "document replaced."
            ),
        )
    ]


def test_deletion_action_d() -> None:
    package = read_xdm(make_xdm(XdmSpec(documents=[DocSpec(action="D")])))
    assert package.documents[0].action == "D" and package.refusals == ()


def test_unknown_action_is_refused() -> None:
    package = read_xdm(make_xdm(XdmSpec(documents=[DocSpec(action="X")])))
    assert [(r.code, r.sentence) for r in package.refusals] == [
        (
            906,
            (
                "The document entry 'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' has an "
                "action slot "
                "'X'; only C (replace) and D (delete) are defined."
            ),
        )
    ]


@pytest.mark.parametrize(
    ("flag", "attribute"),
    [
        ("MASQUE_PS", "masked_from_professionals"),
        ("INVISIBLE_PATIENT", "invisible_to_patient"),
        ("INVISIBLE_REPRESENTANTS_LEGAUX", "invisible_to_legal_representatives"),
    ],
)
def test_dmp_visibility_flags(flag: str, attribute: str) -> None:
    doc = DocSpec(confidentiality=(("N", HL7_CONF), (flag, TRE_A07)))
    entry = read_xdm(make_xdm(XdmSpec(documents=[doc]))).documents[0]
    flags = {
        "masked_from_professionals",
        "invisible_to_patient",
        "invisible_to_legal_representatives",
    }
    assert {a for a in flags if getattr(entry, a)} == {attribute}
    assert entry.refusals == ()


def test_hl7v2_spelling_of_legal_representatives_flag_is_refused() -> None:
    doc = DocSpec(confidentiality=(("N", HL7_CONF), ("INVISIBLE_REP_LEGAUX", TRE_A07)))
    entry = read_xdm(make_xdm(XdmSpec(documents=[doc]))).documents[0]
    assert not entry.invisible_to_legal_representatives
    assert [r.code for r in entry.refusals] == [906]
    assert "INVISIBLE_REP_LEGAUX, the HL7v2 OBX spelling" in entry.refusals[0].sentence


def test_flag_under_the_wrong_scheme_is_refused() -> None:
    doc = DocSpec(confidentiality=(("MASQUE_PS", HL7_CONF),))
    entry = read_xdm(make_xdm(XdmSpec(documents=[doc]))).documents[0]
    assert not entry.masked_from_professionals
    assert [(r.code, r.sentence) for r in entry.refusals] == [
        (
            906,
            (
                "The document entry 'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' has the "
                "confidentiality code MASQUE_PS under the scheme '2.16.840.1.113883.5.25'; DMP "
                "visibility flags use 1.2.250.1.213.1.1.4.13."
            ),
        )
    ]


def test_french_type_code_scheme_cross_checks_with_cda() -> None:
    cda = make_cda(
        code="EXPORT_DUI",
        code_system="1.2.250.1.213.1.1.4.12",
        display="Export du Dossier Usager Informatisé",
    )
    doc = DocSpec(content=cda, type_code=("EXPORT_DUI", "1.2.250.1.213.1.1.4.12"))
    entry = read_xdm(make_xdm(XdmSpec(documents=[doc]))).documents[0]
    assert entry.type_code is not None and entry.type_code.scheme == "1.2.250.1.213.1.1.4.12"
    assert cross_check(entry, read_cda_header(entry.data)) == []


def test_wrong_nir_key_is_flagged_not_refused() -> None:
    doc = DocSpec(
        content=make_cda(ins=INS_WRONG_KEY), patient_cx=f"{INS_WRONG_KEY}^^^&{INS_TEST_OID}&ISO^NH"
    )
    package = read_xdm(make_xdm(XdmSpec(documents=[doc], submission_patient_cx=None)))
    entry = package.documents[0]
    assert entry.ins is not None and entry.ins.key_ok is False and entry.refusals == ()
    assert (
        "IHE_XDM/SUBSET01/METADATA.XML: document entry "
        "'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' INS 147720425367411 has a wrong NIR "
        "key (flagged, not refused)."
    ) in package.warnings


@pytest.mark.parametrize(
    ("cx", "code", "sentence"),
    [
        (
            None,
            903,
            (
                "has no patient identifier (XDSDocumentEntry.patientId: it is empty; "
                "sourcePatientId is 'IPP-0042^^^&1.2.250.1.999.2.3&ISO^PI'), hence no INS."
            ),
        ),
        (
            "IPP-0042^^^&1.2.250.1.999.2.3&ISO^PI",
            903,
            (
                "has XDSDocumentEntry.patientId 'IPP-0042^^^&1.2.250.1.999.2.3&ISO^PI', "
                "which is not an INS:"
                " its authority 1.2.250.1.999.2.3 is none of 1.2.250.1.213.1.4.8, "
                "1.2.250.1.213.1.4.10, "
                "1.2.250.1.213.1.4.13."
            ),
        ),
        (
            f"2770763220829^^^&{INS_TEST_OID}&ISO^NH",
            905,
            (
                "has the INS matricule '2770763220829', which is not the 15 characters of a "
                "NIR with its "
                "key."
            ),
        ),
        (
            f"{INS}^^^&{INS_TEST_OID}&ISX",
            906,
            (
                f"has a malformed XDSDocumentEntry.patientId '{INS}^^^&{INS_TEST_OID}&ISX': "
                f"its assigning "
                "authority type is 'ISX', not ISO."
            ),
        ),
        (
            f"{INS}^^^{INS_TEST_OID}",
            906,
            (
                f"has a malformed XDSDocumentEntry.patientId '{INS}^^^{INS_TEST_OID}': its "
                f"assigning "
                f"authority '{INS_TEST_OID}' is not of the form &OID&ISO."
            ),
        ),
    ],
)
def test_patient_id_refusals(cx: str | None, code: int, sentence: str) -> None:
    package = read_xdm(
        make_xdm(XdmSpec(documents=[DocSpec(patient_cx=cx)], submission_patient_cx=None))
    )
    (refusal,) = package.refusals
    assert refusal.code == code
    assert refusal.sentence == (
        f"The document entry 'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' {sentence}"
    )
    assert refusal.sentence_fr.startswith("La fiche 'urn:uuid:9a0b1c2d-0001-4000-8000-")


def test_document_and_submission_set_for_different_patients() -> None:
    package = read_xdm(
        make_xdm(XdmSpec(submission_patient_cx=f"{OTHER_INS}^^^&{INS_TEST_OID}&ISO^NH"))
    )
    assert [r.code for r in package.refusals] == [906]
    assert "but its SubmissionSet for" in package.refusals[0].sentence


def test_extra_files_are_warnings_not_errors() -> None:
    package = read_xdm(make_xdm(XdmSpec(extra_files={"STRAY.PDF": PDF})))
    assert len(package.documents) == 1
    assert package.warnings == (
        (
            "IHE_XDM/SUBSET01/STRAY.PDF: file of subset 'IHE_XDM/SUBSET01' "
            "not referenced by METADATA.XML; ignored."
        ),
    )


def test_missing_uri_resolved_by_exact_id_only() -> None:
    doc = DocSpec(uri_slot=False, entry_id="Document01", file_name="Document01.xml")
    package = read_xdm(make_xdm(XdmSpec(documents=[doc])))
    assert package.documents[0].path == "IHE_XDM/SUBSET01/Document01.xml"
    assert any(
        "has no URI slot; file 'IHE_XDM/SUBSET01/Document01.xml' found by its id" in w
        for w in package.warnings
    )
    with pytest.raises(XdmError) as caught:
        read_xdm(make_xdm(XdmSpec(documents=[DocSpec(uri_slot=False)])))
    assert caught.value.sentence == (
        "The document entry 'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' (Compte rendu de "
        "consultation) has no URI slot and no file of subset 'IHE_XDM/SUBSET01' is named after "
        "its id."
    )


def test_level1_cda_with_pdf_inside_xdm() -> None:
    entry = read_xdm(make_xdm(XdmSpec(documents=[DocSpec(content=make_cda(level1_pdf=PDF))])))
    header = read_cda_header(entry.documents[0].data)
    assert (header.level, header.body_media_type, header.embedded) == (1, "application/pdf", PDF)


def test_cross_check_mismatches_each_with_its_code() -> None:
    cda = make_cda(
        doc_ext="43",
        ins=OTHER_INS,
        code="11490-0",
        effective_time="20240115113000+0100",
        author_idnat="810000000021",
    )
    entry = read_xdm(make_xdm(XdmSpec(documents=[DocSpec(content=cda)]))).documents[0]
    errors = cross_check(entry, read_cda_header(cda))
    assert [e.code for e in errors] == [906, 904, 906, 906, 906]
    assert errors[0].sentence.endswith(
        "has uniqueId '1.2.250.1.999.1.1.20240101^42' but its CDA ClinicalDocument/id is "
        "'1.2.250.1.999.1.1.20240101^43'."
    )
    assert errors[1].sentence.endswith(
        f"is for INS {INS} ({INS_TEST_OID}) but its CDA for INS {OTHER_INS} ({INS_TEST_OID})."
    )
    assert "typeCode 11488-4 (2.16.840.1.113883.6.1) but the CDA code is 11490-0" in (
        errors[2].sentence
    )
    assert (
        "creationTime 2024-01-15T09:30:00 without offset but the CDA effectiveTime is "
        "2024-01-15T11:30:00+01:00: neither read as UTC nor as the CDA's local time is it "
        "the same instant." in errors[3].sentence
    )
    assert "author idNat 810000000013 but the CDA authors are 810000000021" in errors[4].sentence


def test_uuid_document_id_case_does_not_matter() -> None:
    root = "E20C5584-4278-11EE-BE56-0242AC120002"
    cda = make_cda(doc_root=root, doc_ext="0001")
    doc = DocSpec(content=cda, unique_id=f"{root.lower()}^0001")
    entry = read_xdm(make_xdm(XdmSpec(documents=[doc]))).documents[0]
    assert cross_check(entry, read_cda_header(cda)) == []


# -- creationTime without offset (the ANS CDA-to-XDM transform copies the CDA's local time) ----


@pytest.mark.parametrize(
    ("effective_time", "creation_time", "instant"),
    [
        # ITI: creationTime in UTC, the CDA in local time with its offset
        ("20240115103000+0100", "20240115093000", datetime(2024, 1, 15, 9, 30, tzinfo=UTC)),
        # the ANS transform: the CDA's digits copied, offset dropped (winter and summer)
        ("20240115103000+0100", "20240115103000", datetime(2024, 1, 15, 9, 30, tzinfo=UTC)),
        ("20240715103000+0200", "20240715103000", datetime(2024, 7, 15, 8, 30, tzinfo=UTC)),
        # a CDA without offset is Paris time; the copy of its digits is the same instant
        ("20240715103000", "20240715103000", datetime(2024, 7, 15, 8, 30, tzinfo=UTC)),
        # an offset written in the metadata is read as written
        ("20240115103000+0100", "20240115103000+0100", datetime(2024, 1, 15, 9, 30, tzinfo=UTC)),
    ],
)
def test_creation_time_as_iti_or_as_the_ans_transform_writes_it(
    effective_time: str, creation_time: str, instant: datetime
) -> None:
    doc = DocSpec(content=make_cda(effective_time=effective_time), creation_time=creation_time)
    entry = read_xdm(make_xdm(XdmSpec(documents=[doc]))).documents[0]
    header = read_cda_header(entry.data)
    assert cross_check(entry, header) == []
    assert agreed_creation_time(entry, header) == instant


@pytest.mark.parametrize(
    ("effective_time", "creation_time"),
    [
        ("20240115103000+0100", "20240115113000"),  # an hour later than either reading
        ("20240115103000+0100", "20240115083000"),  # UTC - 1 h: the offset the wrong way round
        ("20240115103000+0100", "20240116103000"),  # the next day, same clock
        ("20240115103000+0100", "20240115103000+0000"),  # an explicit offset is not re-read
    ],
)
def test_creation_time_that_is_another_instant_is_still_refused(
    effective_time: str, creation_time: str
) -> None:
    doc = DocSpec(content=make_cda(effective_time=effective_time), creation_time=creation_time)
    entry = read_xdm(make_xdm(XdmSpec(documents=[doc]))).documents[0]
    header = read_cda_header(entry.data)
    errors = cross_check(entry, header)
    assert [e.code for e in errors] == [906]
    assert "creationTime" in errors[0].sentence and "effectiveTime" in errors[0].sentence
    assert agreed_creation_time(entry, header) is None


# -- URIs relative to IHE_XDM/ (DRIMbox) or to the subset folder ------------------------------


@pytest.mark.parametrize("uri_base", ["subset", "ihe_xdm"])
@pytest.mark.parametrize("wrap", [None, "KA202401"])
def test_uris_relative_to_the_subset_or_to_ihe_xdm(uri_base: str, wrap: str | None) -> None:
    spec = XdmSpec(subset="SS000001", wrap=wrap, uri_base=uri_base, signature=True)
    package = read_xdm(make_xdm(spec))
    top = f"{wrap}/" if wrap else ""
    assert package.documents[0].path == f"{top}IHE_XDM/SS000001/DOC0001.XML"
    assert package.signatures[0].path == f"{top}IHE_XDM/SS000001/SIGN_1.XML"
    if uri_base == "subset":
        assert package.warnings == ()
    else:
        assert package.documents[0].uri == "SS000001/DOC0001.XML"
        assert package.warnings == tuple(
            f"{top}IHE_XDM/SS000001/METADATA.XML: URI 'SS000001/{name}' is relative to "
            f"'{top}IHE_XDM/', not to the subset folder '{top}IHE_XDM/SS000001'; read as "
            f"'{top}IHE_XDM/SS000001/{name}'."
            for name in ("DOC0001.XML", "SIGN_1.XML")
        )


def test_drimbox_kos_uri_relative_to_ihe_xdm() -> None:
    """The DRIMbox layout: an imaging KOS as SS000001/KOS_1_1.DCM, a folder below the subset."""
    kos = DocSpec(content=b"DICM" * 40, file_name="KOS_1_1.DCM", mime_type="application/dicom")
    package = read_xdm(
        make_xdm(XdmSpec(subset="SS000001", uri_base="ihe_xdm", documents=[DocSpec(), kos]))
    )
    assert [d.path for d in package.documents] == [
        "IHE_XDM/SS000001/DOC0001.XML",
        "IHE_XDM/SS000001/KOS_1_1.DCM",
    ]


def test_uri_relative_to_the_subset_wins_over_ihe_xdm() -> None:
    """SS000001/DOC0001.XML exists inside the subset folder too: the ITI reading is taken."""
    entries = package_entries(XdmSpec(subset="SS000001", uri_base="ihe_xdm"))
    entries["IHE_XDM/SS000001/SS000001/DOC0001.XML"] = entries["IHE_XDM/SS000001/DOC0001.XML"]
    package = read_xdm(zip_bytes(entries))
    assert package.documents[0].path == "IHE_XDM/SS000001/SS000001/DOC0001.XML"


def test_uri_relative_to_ihe_xdm_matching_only_ignoring_case() -> None:
    entries = {
        name.replace("DOC0001.XML", "doc0001.xml"): data
        for name, data in package_entries(XdmSpec(subset="SS000001", uri_base="ihe_xdm")).items()
    }
    package = read_xdm(zip_bytes(entries))
    assert package.documents[0].path == "IHE_XDM/SS000001/doc0001.xml"
    assert package.warnings[0].endswith(
        "read as 'IHE_XDM/SS000001/doc0001.xml' only ignoring case."
    )


def test_uri_found_nowhere_says_where_it_looked() -> None:
    with pytest.raises(XdmError) as caught:
        read_xdm(
            make_xdm(XdmSpec(subset="SS000001", uri_base="ihe_xdm", omit_files=("DOC0001.XML",)))
        )
    assert caught.value.code == 906
    assert caught.value.sentence == (
        "The document entry 'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' (Compte rendu de "
        "consultation) refers to the file 'SS000001/DOC0001.XML', which is not in the zip "
        "(looked for 'IHE_XDM/SS000001/SS000001/DOC0001.XML' and "
        "'IHE_XDM/SS000001/DOC0001.XML')."
    )


def test_uri_naming_a_file_of_another_subset_is_refused() -> None:
    entries = package_entries(XdmSpec(subset="SS000001", uri_base="ihe_xdm"))
    entries = {
        name.replace("SS000001/METADATA.XML", "SS000002/METADATA.XML").replace(
            "SS000001/DOC", "SS000002/DOC"
        )
        if "METADATA" in name
        else name: data
        for name, data in entries.items()
    }
    with pytest.raises(XdmError) as caught:
        read_xdm(zip_bytes(entries))
    assert caught.value.sentence == (
        "The document entry 'urn:uuid:9a0b1c2d-0001-4000-8000-000000000001' (Compte rendu de "
        "consultation) refers to 'SS000001/DOC0001.XML', which names "
        "'IHE_XDM/SS000001/DOC0001.XML', a file outside its subset folder 'IHE_XDM/SS000002'."
    )
