"""The dispensed items of an ANS eDISP-MED document ("Dispensation médicamenteuse", LOINC 60593-1).

A pharmacy's dispensation is a level-3 CDA (IHE PHARM DIS): its structured
body holds one ``supply`` entry (``classCode="SPLY" moodCode="EVN"``, IHE
Dispense Item 1.3.6.1.4.1.19376.1.9.1.3.4) per item dispensed, with

- the medicine: ``product/manufacturedProduct/manufacturedMaterial``, its ``code``
  (CIP 1.2.250.1.213.2.3.2, CIS 1.2.250.1.213.2.3.1, UCD 1.2.250.1.213.2.61...) and ``name``;
- the quantity given: ``quantity@value`` and ``@unit``;
- the date: ``effectiveTime@value`` (the document's effectiveTime when absent);
- the dose: the ``text`` of the ``substanceAdministration`` in an ``entryRelationship``
  (its ``doseQuantity`` when it has no text);
- the pharmacy: ``performer/assignedEntity/representedOrganization`` (the document's
  author's organisation when absent).

``read_dispensation`` reads them with the safe XML helpers and refuses a
malformed dispensation with a precise 906 (which item, which element), so
filing refuses it as it refuses any unreadable CDA (an MDN error by mail, a
422 OperationOutcome through the API). Nothing is stored beside the
document: the items are read from the stored CDA when they are shown
(``dmp_bridge.dispensations``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from dmp_bridge.cda_model import CdaHeader
from dmp_bridge.cda_xml import find_clinical_document, q
from dmp_bridge.errors import XdmError, other
from dmp_bridge.hl7v2 import parse_dtm

DISPENSATION_TYPE = "60593-1"  # LOINC "Medication dispensed.extended Document"
DISPENSATION_LABEL = "Dispensation médicamenteuse"
LOINC_OID = "2.16.840.1.113883.6.1"
DISPENSE_SECTION = "60590-7"  # LOINC "Medication dispensed.brief"
DISPENSE_ITEM_TEMPLATE = "1.3.6.1.4.1.19376.1.9.1.3.4"
DISPENSE_SECTION_TEMPLATE = "1.3.6.1.4.1.19376.1.9.1.2.3"
CIP_OID = "1.2.250.1.213.2.3.2"
CIS_OID = "1.2.250.1.213.2.3.1"
UCD_OID = "1.2.250.1.213.2.61"
FINESS_OID = "1.2.250.1.71.4.2.2"
MEDICINE_SYSTEMS = {CIP_OID: "CIP", CIS_OID: "CIS", UCD_OID: "UCD"}
MAX_ITEMS = 200
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class DispensedItem:
    """One item a pharmacy gave the patient."""

    medicine: str
    code: str
    code_system: str  # OID, "" when the medicine is named without a code
    quantity: Decimal | None
    unit: str
    dose: str
    dispensed_at: dt.datetime | None
    pharmacy: str
    pharmacy_id: str  # FINESS when given

    @property
    def quantity_text(self) -> str:
        """ "2 boîtes" as written: the number without trailing zeros, then the unit."""
        if self.quantity is None:
            return ""
        number = format(self.quantity.normalize(), "f")
        return f"{number} {self.unit}".strip()


def is_dispensation(header: CdaHeader | None) -> bool:
    """Whether a CDA header says eDISP-MED (its code or one of its translations)."""
    if header is None:
        return False
    codes = ([header.code] if header.code is not None else []) + list(header.translations)
    return any(c.code == DISPENSATION_TYPE for c in codes)


def _text(element: Element | None) -> str:
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _refuse(where: str, what_en: str, what_fr: str) -> XdmError:
    return other(
        f"The dispensation (eDISP-MED, {DISPENSATION_TYPE}) cannot be read: {where}{what_en}.",
        f"La dispensation (eDISP-MED, {DISPENSATION_TYPE}) est illisible : {where}{what_fr}.",
    )


def _time(value: str | None) -> dt.datetime | None:
    return parse_dtm(value, PARIS) if value else None


class _ItemReader:
    """Reads one supply entry; ``n`` is its rank (1-based) in sentences."""

    def __init__(self, supply: Element, n: int, header_time: str | None, pharmacy: tuple[str, str]):
        self.supply, self.n = supply, n
        self.header_time, self.default_pharmacy = header_time, pharmacy

    def refuse(self, en: str, fr: str) -> XdmError:
        return _refuse(f"dispensed item {self.n} ", en, fr)

    def medicine(self) -> tuple[str, str, str]:
        material = self.supply.find(q("product/manufacturedProduct/manufacturedMaterial"))
        if material is None:
            raise self.refuse(
                "has no product/manufacturedProduct/manufacturedMaterial (the medicine)",
                "n'a pas de product/manufacturedProduct/manufacturedMaterial (le médicament)",
            )
        code = material.find(q("code"))
        code_value = (code.get("code") or "").strip() if code is not None else ""
        system = (code.get("codeSystem") or "").strip() if code is not None else ""
        name = _text(material.find(q("name"))) or (
            (code.get("displayName") or "").strip() if code is not None else ""
        )
        if not name:
            raise self.refuse(
                "names no medicine (manufacturedMaterial has neither name nor code displayName)",
                "ne nomme aucun médicament (manufacturedMaterial n'a ni name ni code displayName)",
            )
        if code_value and not system:
            raise self.refuse(
                f"gives the medicine code {code_value!r} without its codeSystem",
                f"donne le code de médicament {code_value!r} sans son codeSystem",
            )
        return name, code_value, system

    def quantity(self) -> tuple[Decimal | None, str]:
        element = self.supply.find(q("quantity"))
        if element is None or element.get("value") is None:
            return None, ""
        raw = element.get("value", "").strip()
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value <= 0 or value > 100000:
            raise self.refuse(
                f"has the quantity {raw!r}, which is not a positive number",
                f"a la quantité {raw!r}, qui n'est pas un nombre positif",
            )
        return value, (element.get("unit") or "").strip()

    def date(self) -> dt.datetime | None:
        element = self.supply.find(q("effectiveTime"))
        value = element.get("value") if element is not None else None
        if element is not None and value is None:
            low = element.find(q("low"))
            value = low.get("value") if low is not None else None
        if not value:
            return _time(self.header_time)
        parsed = _time(value)
        if parsed is None:
            raise self.refuse(
                f"has the date {value!r}, which is not an HL7 time (YYYYMMDD[HHMM[SS]][+ZZZZ])",
                f"a la date {value!r}, qui n'est pas une date HL7 (AAAAMMJJ[HHMM[SS]][+ZZZZ])",
            )
        return parsed

    def dose(self) -> str:
        for relation in self.supply.findall(q("entryRelationship")):
            administration = relation.find(q("substanceAdministration"))
            if administration is None:
                continue
            text = _text(administration.find(q("text")))
            if text:
                return text
            dose = administration.find(q("doseQuantity"))
            if dose is not None and dose.get("value"):
                return f"{dose.get('value')} {dose.get('unit') or ''}".strip()
        return ""

    def pharmacy(self) -> tuple[str, str]:
        organisation = self.supply.find(q("performer/assignedEntity/representedOrganization"))
        if organisation is None:
            return self.default_pharmacy
        ident = organisation.find(q("id"))
        name = _text(organisation.find(q("name")))
        return (
            name or self.default_pharmacy[0],
            (ident.get("extension") or "") if ident is not None else self.default_pharmacy[1],
        )

    def read(self) -> DispensedItem:
        medicine, code, system = self.medicine()
        quantity, unit = self.quantity()
        pharmacy, pharmacy_id = self.pharmacy()
        return DispensedItem(
            medicine=medicine,
            code=code,
            code_system=system,
            quantity=quantity,
            unit=unit,
            dose=self.dose(),
            dispensed_at=self.date(),
            pharmacy=pharmacy,
            pharmacy_id=pharmacy_id,
        )


def _author_pharmacy(document: Element) -> tuple[str, str]:
    for path in (
        "author/assignedAuthor/representedOrganization",
        "custodian/assignedCustodian/representedCustodianOrganization",
    ):
        organisation = document.find(q(path))
        if organisation is not None and _text(organisation.find(q("name"))):
            ident = organisation.find(q("id"))
            return (
                _text(organisation.find(q("name"))),
                (ident.get("extension") or "") if ident is not None else "",
            )
    return "", ""


def read_dispensation(data: bytes) -> list[DispensedItem]:
    """The dispensed items of an eDISP-MED CDA, in document order; XdmError 906 when malformed."""
    document = find_clinical_document(data, "The dispensation")
    body = document.find(q("component/structuredBody"))
    if body is None:
        raise _refuse(
            "",
            "it has no structuredBody (an eDISP-MED document is level 3 and lists its items)",
            "elle n'a pas de structuredBody (un document eDISP-MED est de niveau 3 et liste "
            "ses lignes)",
        )
    supplies = [s for s in body.iter(q("supply")) if s.get("moodCode") == "EVN"]
    if not supplies:
        raise _refuse(
            "",
            "its body lists no dispensed item (no entry/supply with moodCode EVN)",
            "son corps ne liste aucune ligne dispensée (aucun entry/supply de moodCode EVN)",
        )
    if len(supplies) > MAX_ITEMS:
        raise _refuse(
            "",
            f"it lists {len(supplies)} items, more than the {MAX_ITEMS} read",
            f"elle liste {len(supplies)} lignes, plus que les {MAX_ITEMS} lues",
        )
    effective = document.find(q("effectiveTime"))
    header_time = effective.get("value") if effective is not None else None
    pharmacy = _author_pharmacy(document)
    return [
        _ItemReader(supply, n, header_time, pharmacy).read()
        for n, supply in enumerate(supplies, start=1)
    ]


def dispensation_refusal(header: CdaHeader | None, data: bytes) -> XdmError | None:
    """Why a CDA that says eDISP-MED cannot be filed (None when it reads, or is another type)."""
    if not is_dispensation(header):
        return None
    try:
        read_dispensation(data)
    except XdmError as error:
        return error
    return None
