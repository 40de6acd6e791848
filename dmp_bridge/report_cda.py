"""Write a medical report (CDA R2 level 3, a narrative in sections) and its PDF rendering.

The professionals' software writes the real ones; this writer gives the demo
data documents a patient can read in "Mon dossier": the header the bridge
reads (INS with its identity traits, the author's idNat and organisation),
one section per heading with its narrative text, and, when asked, the same
report as a PDF (what an XDM package carries beside its CDA).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from dmp_bridge.dispensation import FINESS_OID, LOINC_OID
from dmp_bridge.ins import INS_NIR_OID
from dmp_bridge.xdm_model import IDNAT_OID

HL7_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
PROFESSION_OID = "1.2.250.1.71.1.2.7"  # TRE_G15
CI_SIS_TEMPLATE = "1.2.250.1.213.1.1.1.1"


@dataclass(frozen=True)
class ReportPatient:
    """Who the report is about: the INS and its identity traits."""

    ins: str
    family: str
    given: str
    birth_date: dt.date
    gender: str  # M, F, U
    ins_oid: str = INS_NIR_OID


@dataclass(frozen=True)
class ReportAuthor:
    """Who wrote it: the professional's idNat and profession, and their organisation."""

    id_nat: str
    family: str
    given: str
    profession_code: str
    profession_label: str
    organisation: str
    organisation_finess: str = ""


@dataclass(frozen=True)
class ReportSection:
    """One heading and its text: paragraphs, then a list of items (both optional)."""

    title: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    code: str = ""  # LOINC code of the section, when there is one


@dataclass(frozen=True)
class Report:
    """The whole report: its type (LOINC), title, date and sections."""

    type_code: str
    type_label: str
    title: str
    effective_time: dt.datetime
    sections: tuple[ReportSection, ...] = field(default_factory=tuple)


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S%z")


def _organisation(tag: str, author: ReportAuthor) -> str:
    ident = (
        f"<id root={quoteattr(FINESS_OID)} extension={quoteattr(author.organisation_finess)}/>"
        if author.organisation_finess
        else ""
    )
    return f"<{tag}>{ident}<name>{escape(author.organisation)}</name></{tag}>"


def _section(section: ReportSection) -> str:
    code = (
        f'<code code={quoteattr(section.code)} codeSystem="{LOINC_OID}"/>' if section.code else ""
    )
    text = "".join(f"<paragraph>{escape(p)}</paragraph>" for p in section.paragraphs)
    if section.items:
        text += "<list>" + "".join(f"<item>{escape(i)}</item>" for i in section.items) + "</list>"
    return (
        f"<component><section>{code}<title>{escape(section.title)}</title>"
        f"<text>{text}</text></section></component>"
    )


def build_report(
    patient: ReportPatient,
    author: ReportAuthor,
    report: Report,
    *,
    document_root: str,
    document_extension: str,
) -> bytes:
    """The report as a CDA R2 level-3 document (UTF-8 bytes)."""
    when = _ts(report.effective_time)
    person = (
        f"<id root={quoteattr(IDNAT_OID)} extension={quoteattr(author.id_nat)}/>"
        f"<code code={quoteattr(author.profession_code)} codeSystem={quoteattr(PROFESSION_OID)} "
        f"displayName={quoteattr(author.profession_label)}/>"
        "<assignedPerson><name>"
        f"<given>{escape(author.given)}</given><family>{escape(author.family)}</family>"
        "</name></assignedPerson>"
    )
    set_id = f"{document_root}.{document_extension}.0"
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        '<realmCode code="FR"/><typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
        f'<templateId root="{CI_SIS_TEMPLATE}"/>'
        f"<id root={quoteattr(document_root)} extension={quoteattr(document_extension)}/>"
        f"<code code={quoteattr(report.type_code)} codeSystem={quoteattr(LOINC_OID)} "
        f"displayName={quoteattr(report.type_label)}/>"
        f"<title>{escape(report.title)}</title>"
        f'<effectiveTime value="{when}"/>'
        f'<confidentialityCode code="N" codeSystem="{HL7_CONFIDENTIALITY}"/>'
        '<languageCode code="fr-FR"/>'
        f'<setId root={quoteattr(set_id)}/><versionNumber value="1"/>'
        "<recordTarget><patientRole>"
        f"<id root={quoteattr(patient.ins_oid)} extension={quoteattr(patient.ins)}/>"
        "<patient><name>"
        f'<family qualifier="BR">{escape(patient.family)}</family>'
        f"<given>{escape(patient.given)}</given>"
        "</name>"
        f"<administrativeGenderCode code={quoteattr(patient.gender)} "
        'codeSystem="2.16.840.1.113883.5.1"/>'
        f'<birthTime value="{patient.birth_date:%Y%m%d}"/>'
        "</patient></patientRole></recordTarget>"
        f'<author><time value="{when}"/><assignedAuthor>{person}'
        + _organisation("representedOrganization", author)
        + "</assignedAuthor></author>"
        "<custodian><assignedCustodian>"
        + _organisation("representedCustodianOrganization", author)
        + "</assignedCustodian></custodian>"
        f'<legalAuthenticator><time value="{when}"/><signatureCode code="S"/>'
        f"<assignedEntity>{person}</assignedEntity></legalAuthenticator>"
        "<component><structuredBody>"
        + "".join(_section(section) for section in report.sections)
        + "</structuredBody></component></ClinicalDocument>\n"
    )
    return document.encode("utf-8")


def report_pdf(patient: ReportPatient, author: ReportAuthor, report: Report) -> bytes:
    """The same report as a one-column PDF (fpdf2's core Helvetica: Latin-1 text, so "œ" is
    written "oe")."""
    from fpdf import FPDF

    def latin1(text: str) -> str:
        for wide, narrow in (("’", "'"), ("œ", "oe"), ("Œ", "OE")):
            text = text.replace(wide, narrow)
        return text.encode("latin-1", "replace").decode("latin-1")

    pdf = FPDF(format="A4")
    pdf.set_title(latin1(report.title))
    pdf.set_author(latin1(f"{author.given} {author.family}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 8, latin1(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(
        0,
        6,
        latin1(
            f"{author.given} {author.family}, {author.profession_label.lower()} - "
            f"{author.organisation}\n"
            f"Patient : {patient.given} {patient.family.upper()}, "
            f"né(e) le {patient.birth_date:%d/%m/%Y}\n"
            f"Date : {report.effective_time:%d/%m/%Y}"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for section in report.sections:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(0, 7, latin1(section.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        for paragraph in section.paragraphs:
            pdf.multi_cell(0, 6, latin1(paragraph), new_x="LMARGIN", new_y="NEXT")
        for item in section.items:
            pdf.multi_cell(0, 6, latin1(f"- {item}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
