"""What a document's metadata must say for the DMP to hold it: its format and its confidentiality.

One list of formats serves every way in (the ITI-65 API, XDM packages by
mail, the portal): a type outside it is refused, never stored, so the hub
never holds (nor serves) HTML, SVG or scripts under a medical label.

Confidentiality codes decide who sees a document: a code the hub cannot
read with certainty is refused, never dropped, or a document meant to be
hidden would be filed visible. Pure functions; codes come as (scheme OID,
code) pairs, the callers turn their syntax (XDS codingScheme, FHIR
``urn:oid:`` systems) into OIDs first.
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.policy.decision import Decision
from mss.policy.dmp_filing import FILE, refuse_filing

CDA_TYPES = frozenset(
    {"text/xml", "application/xml", "application/hl7-v3+xml", "application/hl7-cda+xml"}
)


@dataclass(frozen=True)
class DmpFormat:
    """One accepted format: its name for people and the file name extension of a download."""

    name: str
    extension: str


# The formats of the CI-SIS (volet Structuration minimale: CDA R2 and the nonXMLBody types),
# plus PNG and DICOM objects (imaging KOS). Keys are media types without parameters.
DMP_FORMATS: dict[str, DmpFormat] = {
    **{cda: DmpFormat("CDA R2 (XML)", ".xml") for cda in sorted(CDA_TYPES)},
    "application/pdf": DmpFormat("PDF", ".pdf"),
    "image/jpeg": DmpFormat("JPEG", ".jpg"),
    "image/png": DmpFormat("PNG", ".png"),
    "image/tiff": DmpFormat("TIFF", ".tif"),
    "text/plain": DmpFormat("text", ".txt"),
    "text/rtf": DmpFormat("RTF", ".rtf"),
    "application/rtf": DmpFormat("RTF", ".rtf"),
    "application/dicom": DmpFormat("DICOM", ".dcm"),
}
ACCEPTED_LIST = ", ".join(DMP_FORMATS)

CONFIDENTIALITY_FR = "1.2.250.1.213.1.1.4.13"  # TRE_A07: the DMP's visibility flags
CONFIDENTIALITY_HL7 = "2.16.840.1.113883.5.25"
DMP_FLAGS = frozenset({"MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"})
HL7_LEVELS_HELD = frozenset(
    {"N"}
)  # the DMP's only HL7 level; R, V... would promise what it does not do


def media_type(value: str | None) -> str:
    """The bare media type of a Content-Type value: lower case, without parameters."""
    return (value or "").split(";", 1)[0].strip().lower()


def decide_dmp_format(mime_type: str | None) -> Decision:
    """Whether the DMP holds documents of this type (906 otherwise, naming the accepted types)."""
    if media_type(mime_type) in DMP_FORMATS:
        return FILE
    return refuse_filing(
        906,
        f"The DMP does not hold documents of type {mime_type or '(none)'!r}; "
        f"accepted types: {ACCEPTED_LIST}",
        f"Le DMP n'accepte pas les documents de type {mime_type or '(aucun)'!r} ; types "
        f"acceptés : {ACCEPTED_LIST}",
    )


def served_format(mime_type: str | None) -> tuple[str, str]:
    """(Content-Type, extension) to serve a stored document as: its type when accepted, else
    bytes."""
    bare = media_type(mime_type)
    accepted = DMP_FORMATS.get(bare)
    return (
        (bare, accepted.extension) if accepted is not None else ("application/octet-stream", ".bin")
    )


def decide_confidentiality(codes: tuple[tuple[str, str], ...]) -> Decision:
    """Every (scheme OID, code) must be a DMP flag under TRE_A07 or HL7 N; anything else is 906."""
    for scheme, code in codes:
        if scheme == CONFIDENTIALITY_FR and code in DMP_FLAGS:
            continue
        if scheme == CONFIDENTIALITY_HL7 and code in HL7_LEVELS_HELD:
            continue
        if scheme == CONFIDENTIALITY_FR:
            why = f"{code!r} is not a DMP visibility flag (use {', '.join(sorted(DMP_FLAGS))})"
        elif scheme == CONFIDENTIALITY_HL7:
            why = (
                f"the DMP holds only the HL7 level N, not {code!r}; hide a document with "
                f"MASQUE_PS, INVISIBLE_PATIENT or INVISIBLE_REPRESENTANTS_LEGAUX "
                f"({CONFIDENTIALITY_FR})"
            )
        else:
            why = (
                f"the scheme {scheme!r} is unknown; visibility flags use {CONFIDENTIALITY_FR}, "
                f"the confidentiality level {CONFIDENTIALITY_HL7}"
            )
        return refuse_filing(
            906,
            f"Unreadable confidentiality code {code!r}: {why}",
            f"Code de confidentialité illisible {code!r} : seuls MASQUE_PS, "
            "INVISIBLE_PATIENT et INVISIBLE_REPRESENTANTS_LEGAUX "
            f"({CONFIDENTIALITY_FR}) et N ({CONFIDENTIALITY_HL7}) sont lus",
        )
    return FILE


def dmp_flags(codes: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The DMP visibility flags among codes ``decide_confidentiality`` accepted."""
    return frozenset(
        code for scheme, code in codes if scheme == CONFIDENTIALITY_FR and code in DMP_FLAGS
    )
