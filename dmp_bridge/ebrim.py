"""Read an ebRIM 3.0 SubmitObjectsRequest (METADATA.XML) into plain registry objects.

Decision on the ANS METADATA.XML that uses an undeclared prefix
(``<ns3:SubmitObjectsRequest>`` with no ``xmlns`` anywhere): it is not
namespace-well-formed, but its meaning is unambiguous, so we **repair** it:
when the document declares no namespace at all, the root element's prefix is
bound to lcm 3.0 and the default namespace to rim 3.0, and a warning says so.
Any other undeclared prefix (or a document that declares some namespaces and
forgets others) is refused with 906.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from dmp_bridge.errors import other
from dmp_bridge.xmlsafe import parse_xml, strip_bom_and_space

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
# Comments and processing instructions that cannot contain their own end: with ".*?" a run of
# "<?a?>" could be split in 2^n ways and a failed match took minutes (tests/fuzz/test_fuzz_xdm.py).
_ROOT_PREFIX = re.compile(
    rb"^(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--(?:[^-]|-(?!->))*-->|<\?(?:[^?]|\?(?!>))*\?>)\s*)*"
    rb"<([A-Za-z_][\w.-]*):SubmitObjectsRequest\b",
    re.DOTALL,
)


@dataclass
class RimObject:
    """One ExtrinsicObject, RegistryPackage or Association with what hangs on it."""

    kind: str  # local name: ExtrinsicObject, RegistryPackage, Association
    id: str
    attributes: dict[str, str]
    slots: dict[str, list[str]]
    name: str | None
    description: str | None
    classifications: list[Element] = field(default_factory=list)
    external_ids: dict[str, str | None] = field(default_factory=dict)


def _rim(tag: str) -> str:
    return f"{{{RIM}}}{tag}"


def load_metadata(data: bytes, what: str) -> tuple[Element, list[str]]:
    """Parse METADATA.XML (repairing the undeclared-prefix case); return root and warnings."""
    warnings: list[str] = []
    body = strip_bom_and_space(data)
    if b"xmlns" not in body:
        match = _ROOT_PREFIX.match(body)
        if match:
            prefix = match.group(1)
            at = match.end()
            body = (
                body[:at]
                + b" xmlns:"
                + prefix
                + b'="'
                + LCM.encode()
                + b'" xmlns="'
                + RIM.encode()
                + b'"'
                + body[at:]
            )
            warnings.append(
                f"{what}: no namespace declared; repaired by binding the prefix "
                f"{prefix.decode()!r} to lcm 3.0 and the default namespace to rim 3.0."
            )
        else:
            body = re.sub(
                rb"<SubmitObjectsRequest\b",
                b'<SubmitObjectsRequest xmlns="' + LCM.encode() + b'"',
                body,
                count=1,
            )
            warnings.append(f"{what}: no namespace declared; read as lcm/rim 3.0.")
    root = parse_xml(body, what)
    if root.tag != f"{{{LCM}}}SubmitObjectsRequest":
        raise other(
            f"{what}: the root element is {root.tag!r}, expected SubmitObjectsRequest in the "
            f"ebRIM 3.0 namespace {LCM}.",
            f"{what} : l'élément racine est {root.tag!r}, SubmitObjectsRequest de l'espace de "
            f"noms ebRIM 3.0 {LCM} était attendu.",
        )
    if root.find(_rim("RegistryObjectList")) is None:
        raise other(
            f"{what}: no RegistryObjectList in the rim 3.0 namespace.",
            f"{what} : pas de RegistryObjectList dans l'espace de noms rim 3.0.",
        )
    return root, warnings


def slots_of(element: Element) -> dict[str, list[str]]:
    """The Slot children of an element as ``{name: [values]}``."""
    slots: dict[str, list[str]] = {}
    for slot in element.findall(_rim("Slot")):
        values = [(v.text or "").strip() for v in slot.iter(_rim("Value"))]
        slots.setdefault(slot.get("name", ""), []).extend(values)
    return slots


def localized(element: Element, child: str) -> str | None:
    """The first LocalizedString value of a Name or Description child."""
    holder = element.find(_rim(child))
    if holder is None:
        return None
    string = holder.find(_rim("LocalizedString"))
    value = string.get("value") if string is not None else None
    return value.strip() if value and value.strip() else None


def read_objects(root: Element) -> tuple[list[RimObject], list[Element]]:
    """Index the RegistryObjectList: objects with their classifications and identifiers.

    Returns the objects and the top-level Classifications that classify them
    (a Classification may be nested in its object or stand alone next to it).
    """
    object_list = root.find(_rim("RegistryObjectList"))
    assert object_list is not None  # checked by load_metadata
    objects: list[RimObject] = []
    loose: list[Element] = []
    for element in object_list:
        kind = element.tag.rsplit("}", 1)[-1]
        if kind == "Classification":
            loose.append(element)
            continue
        if kind not in ("ExtrinsicObject", "RegistryPackage", "Association"):
            continue
        obj = RimObject(
            kind=kind,
            id=element.get("id", ""),
            attributes=dict(element.attrib),
            slots=slots_of(element),
            name=localized(element, "Name"),
            description=localized(element, "Description"),
            classifications=element.findall(_rim("Classification")),
        )
        for ident in element.findall(_rim("ExternalIdentifier")):
            obj.external_ids[ident.get("identificationScheme", "")] = ident.get("value")
        objects.append(obj)
    by_id = {o.id: o for o in objects}
    for element in loose:
        target = by_id.get(element.get("classifiedObject", ""))
        if target is not None:
            target.classifications.append(element)
    return objects, loose
