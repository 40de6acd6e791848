"""dmp_bridge.report_cda: the demo's medical reports, read back by the bridge's own readers."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pypdf

from dmp_bridge.cda import narrative_html, read_cda_header
from dmp_bridge.report_cda import (
    Report,
    ReportAuthor,
    ReportPatient,
    ReportSection,
    build_report,
    report_pdf,
)

PATIENT = ReportPatient(
    ins="285037505612306",
    family="DURAND",
    given="Marie",
    birth_date=dt.date(1985, 3, 14),
    gender="F",
)
AUTHOR = ReportAuthor(
    id_nat="810002345675",
    family="MARTIN",
    given="Claire",
    profession_code="10",
    profession_label="Médecin",
    organisation="Centre hospitalier <démo> & Co",
    organisation_finess="310123450",
)
REPORT = Report(
    type_code="11488-4",
    type_label="Compte rendu de consultation",
    title="Consultation de cardiologie",
    effective_time=dt.datetime(2026, 11, 13, 10, 15, tzinfo=ZoneInfo("Europe/Paris")),
    sections=(
        ReportSection("Motif", ("Palpitations à l'effort <depuis> deux mois.",)),
        ReportSection("Conclusion", ("Rien au cœur.",), ("Limiter le café", "Écho")),
    ),
)


def test_the_header_the_bridge_reads() -> None:
    header = read_cda_header(
        build_report(PATIENT, AUTHOR, REPORT, document_root="1.2.3", document_extension="x-1")
    )
    assert header.refusals == ()
    assert header.level == 3
    assert (header.document_id.root, header.document_id.extension) == ("1.2.3", "x-1")
    assert header.code is not None and header.code.code == "11488-4"
    assert header.title == "Consultation de cardiologie"
    assert header.patient.ins is not None and header.patient.ins.key_ok
    assert header.patient.birth_time == dt.date(1985, 3, 14) and header.patient.gender == "F"
    assert header.authors[0].id_nat == "810002345675"
    assert header.effective_time == REPORT.effective_time


def test_the_narrative_is_escaped_and_in_sections() -> None:
    html = narrative_html(
        build_report(PATIENT, AUTHOR, REPORT, document_root="1.2.3", document_extension="x-1")
    )
    assert "Motif" in html and "Conclusion" in html
    assert "&lt;depuis&gt;" in html and "<depuis>" not in html
    assert html.count("<li>") == 2


def test_the_pdf_rendering() -> None:
    pdf = report_pdf(PATIENT, AUTHOR, REPORT)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Consultation de cardiologie" in text and "Marie DURAND" in text
    assert "Rien au coeur." in text and "- Limiter le café" in text
