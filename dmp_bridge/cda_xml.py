"""Locate the ClinicalDocument in untrusted bytes (it is not always the root)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from dmp_bridge.errors import other
from dmp_bridge.xmlsafe import parse_xml

HL7 = "urn:hl7-org:v3"


def q(path: str) -> str:
    """Qualify a slash path of local names with the HL7 v3 namespace."""
    return "/".join(f"{{{HL7}}}{step}" for step in path.split("/"))


def find_clinical_document(data: bytes, what: str = "The CDA document") -> Element:
    """Parse ``data`` safely and return the first ClinicalDocument element at any depth.

    "Auto-présentable" documents have an ``xsl:stylesheet`` root with the
    ClinicalDocument inside it.
    """
    root = parse_xml(data, what)
    document = next(root.iter(q("ClinicalDocument")), None)
    if document is None:
        unqualified = next((e for e in root.iter() if e.tag.endswith("ClinicalDocument")), None)
        hint = (
            f" (found {unqualified.tag!r}, outside the namespace {HL7})"
            if unqualified is not None
            else f" (root element {root.tag!r})"
        )
        raise other(
            f"{what} has no ClinicalDocument element in {HL7}{hint}.",
            f"{what} n'a pas d'élément ClinicalDocument dans {HL7}{hint}.",
        )
    return document
