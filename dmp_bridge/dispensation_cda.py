"""Write an eDISP-MED dispensation (CDA R2 level 3) for the demo data and the tests.

The pharmacy's software writes the real ones; this writer gives the hub the
documents it reads (``dmp_bridge.dispensation``) with the header the bridge
checks (INS with its identity traits, the pharmacist's idNat, the pharmacy
by FINESS) and one IHE PHARM DIS Dispense Item per medicine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from dmp_bridge.dispensation import (
    CIP_OID,
    DISPENSATION_LABEL,
    DISPENSATION_TYPE,
    DISPENSE_ITEM_TEMPLATE,
    DISPENSE_SECTION,
    DISPENSE_SECTION_TEMPLATE,
    FINESS_OID,
    LOINC_OID,
)
from dmp_bridge.ins import INS_NIR_OID
from dmp_bridge.xdm_model import IDNAT_OID

HL7_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
PROFESSION_OID = "1.2.250.1.71.1.2.7"  # TRE_G15
EDISP_TEMPLATE = "1.2.250.1.213.1.1.1.47"  # CI-SIS eDISP-MED
DIS_TEMPLATE = "1.3.6.1.4.1.19376.1.9.1.1.3"  # IHE PHARM DIS document


@dataclass(frozen=True)
class DispenseLine:
    """One medicine to write: name, code (CIP by default), quantity, dose, date."""

    medicine: str
    code: str
    quantity: Decimal | int
    unit: str
    dose: str
    dispensed_at: dt.datetime
    code_system: str = CIP_OID


@dataclass(frozen=True)
class DispensationParty:
    """Who the document is for and who wrote it."""

    ins: str
    family: str
    given: str
    birth_date: dt.date
    gender: str  # M, F, U
    pharmacist_id_nat: str
    pharmacist_family: str
    pharmacist_given: str
    pharmacy: str
    pharmacy_finess: str
    ins_oid: str = INS_NIR_OID


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S%z")


def _organisation(tag: str, party: DispensationParty) -> str:
    return (
        f"<{tag}><id root={quoteattr(FINESS_OID)} extension={quoteattr(party.pharmacy_finess)}/>"
        f"<name>{escape(party.pharmacy)}</name></{tag}>"
    )


def _item(line: DispenseLine, n: int, party: DispensationParty, root: str) -> str:
    return (
        '<entry><supply classCode="SPLY" moodCode="EVN">'
        f'<templateId root="{DISPENSE_ITEM_TEMPLATE}"/>'
        f"<id root={quoteattr(root)} extension={quoteattr(f'item-{n}')}/>"
        '<code code="FFC" codeSystem="2.16.840.1.113883.5.4" displayName="First Fill - Complete"/>'
        f'<effectiveTime value="{_ts(line.dispensed_at)}"/>'
        f"<quantity value={quoteattr(str(line.quantity))} unit={quoteattr(line.unit)}/>"
        "<product><manufacturedProduct><manufacturedMaterial>"
        f"<code code={quoteattr(line.code)} codeSystem={quoteattr(line.code_system)} "
        f"displayName={quoteattr(line.medicine)}/>"
        f"<name>{escape(line.medicine)}</name>"
        "</manufacturedMaterial></manufacturedProduct></product>"
        f'<performer><time value="{_ts(line.dispensed_at)}"/><assignedEntity>'
        f"<id root={quoteattr(IDNAT_OID)} extension={quoteattr(party.pharmacist_id_nat)}/>"
        + _organisation("representedOrganization", party)
        + "</assignedEntity></performer>"
        '<entryRelationship typeCode="COMP"><substanceAdministration classCode="SBADM" '
        'moodCode="INT">'
        f"<text>{escape(line.dose)}</text>"
        '<consumable><manufacturedProduct><manufacturedMaterial nullFlavor="NA"/>'
        "</manufacturedProduct></consumable>"
        "</substanceAdministration></entryRelationship>"
        "</supply></entry>"
    )


def _narrative(lines: list[DispenseLine]) -> str:
    rows = "".join(
        f"<tr><td>{escape(line.medicine)}</td><td>{escape(str(line.quantity))} "
        f"{escape(line.unit)}</td><td>{escape(line.dose)}</td>"
        f"<td>{line.dispensed_at:%d/%m/%Y}</td></tr>"
        for line in lines
    )
    return (
        "<table><thead><tr><th>Médicament</th><th>Quantité</th><th>Posologie</th>"
        f"<th>Date</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def build_dispensation(
    party: DispensationParty,
    lines: list[DispenseLine],
    *,
    document_root: str,
    document_extension: str,
    effective_time: dt.datetime,
) -> bytes:
    """An eDISP-MED document (UTF-8 bytes) listing ``lines``."""
    root = f"{document_root}.{document_extension}"
    pharmacist = (
        f"<id root={quoteattr(IDNAT_OID)} extension={quoteattr(party.pharmacist_id_nat)}/>"
        f'<code code="21" codeSystem="{PROFESSION_OID}" displayName="Pharmacien"/>'
        "<assignedPerson><name>"
        f"<given>{escape(party.pharmacist_given)}</given>"
        f"<family>{escape(party.pharmacist_family)}</family>"
        "</name></assignedPerson>"
    )
    when = _ts(effective_time)
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        '<realmCode code="FR"/><typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
        '<templateId root="1.2.250.1.213.1.1.1.1"/>'
        f'<templateId root="{EDISP_TEMPLATE}"/><templateId root="{DIS_TEMPLATE}"/>'
        f"<id root={quoteattr(document_root)} extension={quoteattr(document_extension)}/>"
        f'<code code="{DISPENSATION_TYPE}" codeSystem="{LOINC_OID}" '
        f'displayName="{DISPENSATION_LABEL}"/>'
        f"<title>{DISPENSATION_LABEL}</title>"
        f'<effectiveTime value="{when}"/>'
        f'<confidentialityCode code="N" codeSystem="{HL7_CONFIDENTIALITY}"/>'
        '<languageCode code="fr-FR"/>'
        f'<setId root={quoteattr(root + ".0")}/><versionNumber value="1"/>'
        "<recordTarget><patientRole>"
        f"<id root={quoteattr(party.ins_oid)} extension={quoteattr(party.ins)}/>"
        "<patient><name>"
        f'<family qualifier="BR">{escape(party.family)}</family>'
        f"<given>{escape(party.given)}</given>"
        "</name>"
        f'<administrativeGenderCode code="{party.gender}" codeSystem="2.16.840.1.113883.5.1"/>'
        f'<birthTime value="{party.birth_date:%Y%m%d}"/>'
        "</patient></patientRole></recordTarget>"
        f'<author><time value="{when}"/><assignedAuthor>{pharmacist}'
        + _organisation("representedOrganization", party)
        + "</assignedAuthor></author>"
        "<custodian><assignedCustodian>"
        + _organisation("representedCustodianOrganization", party)
        + "</assignedCustodian></custodian>"
        f'<legalAuthenticator><time value="{when}"/><signatureCode code="S"/>'
        f"<assignedEntity>{pharmacist}</assignedEntity></legalAuthenticator>"
        "<component><structuredBody><component><section>"
        f'<templateId root="{DISPENSE_SECTION_TEMPLATE}"/>'
        f'<code code="{DISPENSE_SECTION}" codeSystem="{LOINC_OID}" '
        'displayName="Médicaments dispensés"/>'
        "<title>Médicaments dispensés</title>"
        f"<text>{_narrative(lines)}</text>"
        + "".join(_item(line, n, party, root) for n, line in enumerate(lines, start=1))
        + "</section></component></structuredBody></component>"
        "</ClinicalDocument>\n"
    )
    return document.encode("utf-8")
