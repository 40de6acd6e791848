"""CDA R2 headers as French senders really write them (README §6), and the narrative HTML."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dmp_bridge.cda import narrative_html, read_cda_header
from dmp_bridge.errors import XdmError
from tests.xdm_factory import IDNAT, INS, INS_TEST_OID, PDF, make_cda

PARIS_WINTER = timezone(timedelta(hours=1))


def test_plain_french_header() -> None:
    header = read_cda_header(make_cda(mailto=f"{INS}@patient.mssante.fr"))
    assert header.document_id.xds_unique_id == "1.2.250.1.999.1.1.20240101^42"
    assert header.code is not None and header.code.code == "11488-4"
    assert header.title == "Compte rendu de consultation"
    assert header.effective_time == datetime(2024, 1, 15, 10, 30, tzinfo=PARIS_WINTER)
    assert header.confidentiality is not None and header.confidentiality.code == "N"
    assert header.language_code == "fr-FR"
    assert header.patient.ins is not None
    assert (header.patient.ins.matricule, header.patient.ins.oid) == (INS, INS_TEST_OID)
    assert [(i.root, i.extension) for i in header.patient.ids][1] == (
        "1.2.250.1.999.2.3",
        "IPP-0042",
    )
    assert header.patient.birth_time == date(1977, 7, 14) and header.patient.gender == "F"
    assert header.patient.mssante_address == f"{INS}@patient.mssante.fr"
    (author,) = header.authors
    assert author.id_nat == IDNAT
    assert author.name is not None and author.name.birth_family == "MARTIN"
    assert author.time == header.effective_time
    assert header.custodian is not None and header.custodian.name == "Cabinet Martin"
    assert header.legal_authenticator is not None
    assert header.legal_authenticator.id_nat == IDNAT
    assert header.level == 3 and header.embedded is None
    assert header.replaces is None and not header.is_replacement
    assert header.refusals == () and header.warnings == ()


@pytest.mark.parametrize(
    "options",
    [
        {"bom": True},
        {"declaration": False},
        {"declaration": False, "stylesheet_pi": False},
        {"crlf": True},
        {"xsl_root": True},
        {"bom": True, "declaration": False, "crlf": True, "xsl_root": True},
    ],
    ids=["bom", "no-declaration", "no-prolog", "crlf", "xsl-root", "all"],
)
def test_tolerated_encodings_and_roots_give_the_same_header(options: dict[str, bool]) -> None:
    assert read_cda_header(make_cda(**options)) == read_cda_header(make_cda())


def test_level1_pdf_is_extracted() -> None:
    header = read_cda_header(make_cda(level1_pdf=PDF))
    assert (header.level, header.body_media_type, header.embedded) == (1, "application/pdf", PDF)
    assert any(t.root == "1.3.6.1.4.1.19376.1.2.20" for t in header.template_ids)
    assert narrative_html(make_cda(level1_pdf=PDF)) == ""


def test_level1_body_that_is_not_base64() -> None:
    data = make_cda(level1_pdf=PDF).replace(b'representation="B64">', b'representation="B64">!!')
    header = read_cda_header(data)
    assert header.embedded is None
    assert [r.code for r in header.refusals] == [906]
    assert header.refusals[0].sentence.startswith("The level-1 CDA body is not valid base64")


def test_level1_pdf_media_type_with_other_content() -> None:
    header = read_cda_header(make_cda(level1_pdf=b"<html>not a pdf</html>"))
    assert [(r.code, r.sentence) for r in header.refusals] == [
        (906, ("The level-1 CDA body says application/pdf but its content is not a PDF."))
    ]


def test_replacement_is_read_from_related_document_not_version() -> None:
    replacing = read_cda_header(make_cda(rplc_parent="1.2.250.1.999.1.1.1", version=1))
    assert replacing.replaces is not None and replacing.replaces.root == "1.2.250.1.999.1.1.1"
    assert replacing.version_number == 1
    version2 = read_cda_header(make_cda(version=2))
    assert version2.version_number == 2 and version2.replaces is None


def test_precise_loinc_in_translation() -> None:
    header = read_cda_header(
        make_cda(
            code="18748-4",
            display="Compte rendu d'imagerie",
            translation=("24727-0", "2.16.840.1.113883.6.1"),
        )
    )
    assert header.code is not None and header.code.code == "18748-4"
    assert [t.code for t in header.translations] == ["24727-0"]


def test_effective_time_without_seconds_or_offset() -> None:
    header = read_cda_header(make_cda(effective_time="202401151030+0100"))
    assert header.effective_time == datetime(2024, 1, 15, 10, 30, tzinfo=PARIS_WINTER)
    local = read_cda_header(make_cda(effective_time="20240715103000"))
    assert local.effective_time is not None
    assert local.effective_time.utcoffset() == timedelta(hours=2)  # Paris, summer
    assert local.warnings[0] == (
        "effectiveTime '20240715103000' has no UTC offset; read as Europe/Paris."
    )


@pytest.mark.parametrize(
    "oid", ["1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.13"]
)
def test_every_ins_oid(oid: str) -> None:
    header = read_cda_header(make_cda(ins_oid=oid))
    assert header.patient.ins is not None and header.patient.ins.oid == oid
    assert header.refusals == ()


def test_no_ins_is_903() -> None:
    header = read_cda_header(make_cda(ins=None))
    assert [(r.code, r.sentence) for r in header.refusals] == [
        (
            903,
            (
                "The CDA document carries no INS among its patient ids "
                "(1.2.250.1.999.2.3/IPP-0042); an "
                "INS is an id under 1.2.250.1.213.1.4.8, 1.2.250.1.213.1.4.10, "
                "1.2.250.1.213.1.4.13."
            ),
        )
    ]


def test_incomplete_matricule_is_905() -> None:
    header = read_cda_header(make_cda(ins="2770763220829"))
    assert [(r.code, r.sentence) for r in header.refusals] == [
        (
            905,
            (
                "The CDA INS matricule '2770763220829' is not the 15 characters of a NIR "
                "with its key."
            ),
        )
    ]


def test_ins_without_traits_is_905() -> None:
    header = read_cda_header(make_cda(traits=False))
    assert [(r.code, r.sentence) for r in header.refusals] == [
        (
            905,
            (
                f"The CDA INS {INS} comes without the identity traits: first names, birth "
                f"date, sex "
                "missing."
            ),
        )
    ]


def test_document_without_clinical_document() -> None:
    with pytest.raises(XdmError) as caught:
        read_cda_header(b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>')
    assert caught.value.sentence == (
        "The CDA document has no ClinicalDocument element in urn:hl7-org:v3 (root element "
        "'{http://www.w3.org/1999/xhtml}html')."
    )


def test_clinical_document_outside_the_hl7_namespace() -> None:
    with pytest.raises(XdmError) as caught:
        read_cda_header(b"<ClinicalDocument><id root='1.2.3'/></ClinicalDocument>")
    assert caught.value.sentence == (
        "The CDA document has no ClinicalDocument element in urn:hl7-org:v3 (found "
        "'ClinicalDocument', outside the namespace urn:hl7-org:v3)."
    )


def test_document_without_id() -> None:
    with pytest.raises(XdmError) as caught:
        read_cda_header(b'<ClinicalDocument xmlns="urn:hl7-org:v3"/>')
    assert caught.value.sentence == "The CDA document has no ClinicalDocument/id root."


def test_narrative_structure() -> None:
    html = narrative_html(make_cda())
    assert html == (
        "<section><h2>Motif</h2><div><p>Patiente vue en consultation.</p><ul>"
        "<li>Tension 12/8</li><li><strong>Pas de fièvre</strong></li></ul></div>"
        "</section>"
    )


def test_narrative_escapes_and_drops_unsafe_things() -> None:
    narrative = (
        '<paragraph onclick="alert(1)" style="x">&lt;script&gt;alert(1)&lt;/script&gt;'
        "<br/>A &amp; B</paragraph>"
        '<linkHtml href="javascript:alert(1)">bad</linkHtml>'
        '<linkHtml href="https://example.org/?a=1&amp;b=&quot;2">good</linkHtml>'
        '<table border="1"><caption>Résultats</caption><tbody><tr>'
        '<td colspan="2" rowspan="x" ID="r1">1</td></tr></tbody></table>'
        '<list listType="ordered"><item>un</item></list>'
        "<unknownElement>kept text</unknownElement><footnote>note</footnote>"
        '<renderMultiMedia referencedObject="img1"/>'
    )
    html = narrative_html(make_cda(narrative=narrative))
    assert html == (
        "<section><h2>Motif</h2><div>"
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;<br>A &amp; B</p>"
        "<span>bad</span>"
        '<a href="https://example.org/?a=1&amp;b=&quot;2">good</a>'
        '<table><caption>Résultats</caption><tbody><tr><td colspan="2">1</td></tr></tbody>'
        "</table><ol><li>un</li></ol>kept text<small>note</small></div></section>"
    )


def test_narrative_of_nested_sections() -> None:
    nested = make_cda().replace(
        b"</text></section>",
        b"</text><component><section><title>Sous-partie</title><text>detail</text></section>"
        b"</component></section>",
    )
    assert narrative_html(nested).endswith(
        "<section><h3>Sous-partie</h3><div>detail</div></section></section>"
    )


def test_absurdly_nested_narrative_is_refused_not_a_crash() -> None:
    deep = "<content>" * 200 + "x" + "</content>" * 200  # under the XML limit, over the narrative's
    with pytest.raises(XdmError) as caught:
        narrative_html(make_cda(narrative=deep))
    assert (caught.value.code, caught.value.sentence) == (
        906,
        "The CDA narrative nests more than 64 levels; refused.",
    )
    deeper = "<content>" * 5000 + "x" + "</content>" * 5000
    with pytest.raises(XdmError) as caught:
        narrative_html(make_cda(narrative=deeper))
    assert (caught.value.code, caught.value.sentence) == (
        906,
        "The CDA document nests its elements more than 256 levels deep; refused.",
    )
