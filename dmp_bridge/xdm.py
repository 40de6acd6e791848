"""Read an IHE XDM package: ``read_xdm(zip bytes) -> XdmPackage``.

Two kinds of trouble, two outcomes:

- the package cannot be trusted as a whole (hostile zip, XML that is not
  well-formed or declares entities, no METADATA.XML, a document file missing,
  a hash or size that does not match the bytes): :class:`XdmError` 906 is
  raised and nothing may be filed;
- one document cannot be filed as is (no INS: 903; incomplete INS: 905;
  malformed patientId, unknown ``action``, a DMP visibility flag under the
  wrong scheme: 906): the package is returned and the reasons are listed in
  ``DocumentEntry.refusals``; the filing layer answers with them.

Oddities that do not stop filing (a wrong NIR key, a document found by its
id because the URI slot is missing, flat zip paths, repaired namespaces,
files nobody references, non-OID uniqueIds) are listed in ``warnings``.
"""

from __future__ import annotations

import hashlib
import re
from xml.etree.ElementTree import Element

from dmp_bridge.ebrim import RimObject, load_metadata, localized, read_objects, slots_of
from dmp_bridge.errors import XdmError, other
from dmp_bridge.hl7v2 import (
    Coded,
    dtm_has_offset,
    is_oid,
    parse_cne,
    parse_cx,
    parse_dtm,
    parse_xcn,
    parse_xon,
)
from dmp_bridge.safezip import DEFAULT_LIMITS, ZipLimits, read_zip
from dmp_bridge.xdm_checks import confidentiality_refusals, judge_patient_id
from dmp_bridge.xdm_layout import Subset, UriLookup, find_subsets, resolve_by_id, resolve_uri
from dmp_bridge.xdm_model import (
    Author,
    DocumentEntry,
    SignatureEntry,
    SubmissionSet,
    XdmPackage,
)

DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
HAS_MEMBER = ("HasMember", "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember")
REPLACES = ("urn:ihe:iti:2007:AssociationType:RPLC", "urn:ihe:iti:2007:AssociationType:XFRM_RPLC")
SIGNS = ("urn:ihe:iti:2007:AssociationType:signs",)
DSG_CLASS = "1.3.6.1.4.1.19376.1.2.1.1.1"
DSG_FORMAT = "http://www.w3.org/2000/09/xmldsig#"
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")


def read_xdm(data: bytes, limits: ZipLimits = DEFAULT_LIMITS) -> XdmPackage:
    """Read an XDM zip in memory; raise XdmError 906 when the package cannot be trusted."""
    files = read_zip(data, limits)
    subsets, warnings = find_subsets(list(files))
    sets: list[SubmissionSet] = []
    documents: list[DocumentEntry] = []
    signatures: list[SignatureEntry] = []
    for subset in subsets:
        reader = _SubsetReader(subset, files, warnings)
        sets.append(reader.submission_set)
        documents.extend(reader.documents)
        signatures.extend(reader.signatures)
    if not documents:
        raise other(
            "The XDM package holds no clinical document entry.",
            "Le paquet XDM ne contient aucune fiche de document clinique.",
        )
    return XdmPackage(
        submission_sets=tuple(sets),
        documents=tuple(documents),
        signatures=tuple(signatures),
        warnings=tuple(warnings),
    )


def _coded(classification: Element) -> Coded | None:
    """A classification's code (nodeRepresentation), or None when it is empty."""
    if not classification.get("nodeRepresentation"):
        return None
    scheme = slots_of(classification).get("codingScheme", [None])[0]
    return Coded(
        code=classification.get("nodeRepresentation", ""),
        scheme=scheme or None,
        display=localized(classification, "Name"),
    )


def _codes(classifications: list[Element]) -> tuple[Coded, ...]:
    return tuple(c for c in map(_coded, classifications) if c is not None)


def _author(classification: Element) -> Author:
    slots = slots_of(classification)
    persons = slots.get("authorPerson", [])
    return Author(
        person=parse_xcn(persons[0]) if persons and persons[0] else None,
        institutions=tuple(parse_xon(v) for v in slots.get("authorInstitution", []) if v),
        roles=tuple(parse_cne(v) for v in slots.get("authorRole", []) if v),
        specialties=tuple(parse_cne(v) for v in slots.get("authorSpecialty", []) if v),
        telecoms=tuple(v for v in slots.get("authorTelecommunication", []) if v),
    )


def _authors(classifications: list[Element]) -> tuple[Author, ...]:
    """The authors of an object, leaving out empty author classifications."""
    authors = (_author(c) for c in classifications)
    return tuple(a for a in authors if a != Author(person=None))


def _first(slots: dict[str, list[str]], name: str) -> str | None:
    values = [v for v in slots.get(name, []) if v]
    return values[0] if values else None


class _SubsetReader:
    """Reads one subset: its METADATA.XML, documents, signatures and leftovers."""

    def __init__(self, subset: Subset, files: dict[str, bytes], warnings: list[str]) -> None:
        self.subset = subset
        self.files = files
        self.warnings = warnings
        self.what = subset.metadata_path
        root, repaired = load_metadata(files[subset.metadata_path], self.what)
        warnings.extend(repaired)
        objects, _ = read_objects(root)
        self.associations = [o for o in objects if o.kind == "Association"]
        self.referenced: set[str] = set()
        self.submission_set = self._submission_set(objects)
        self.documents: list[DocumentEntry] = []
        self.signatures: list[SignatureEntry] = []
        for obj in objects:
            if obj.kind != "ExtrinsicObject":
                continue
            object_type = obj.attributes.get("objectType")
            if object_type not in (DOCUMENT_ENTRY, None):
                warnings.append(
                    f"{self.what}: ExtrinsicObject {obj.id!r} has objectType "
                    f"{object_type!r}, not a stable DocumentEntry; ignored."
                )
                continue
            if object_type is None:
                warnings.append(
                    f"{self.what}: ExtrinsicObject {obj.id!r} has no objectType; "
                    "read as a stable DocumentEntry."
                )
            if self._is_signature(obj):
                self.signatures.append(self._signature(obj))
            else:
                self.documents.append(self._document(obj))
        for name in subset.files.values():
            if name not in self.referenced:
                warnings.append(
                    f"{name}: file of subset {subset.folder!r} not referenced by "
                    "METADATA.XML; ignored."
                )

    # -- submission set -------------------------------------------------------------------

    def _submission_set(self, objects: list[RimObject]) -> SubmissionSet:
        packages = [
            o
            for o in objects
            if o.kind == "RegistryPackage"
            and (
                any(c.get("classificationNode") == SUBMISSION_SET_NODE for c in o.classifications)
                or SS_UNIQUE_ID in o.external_ids
            )
        ]
        if len(packages) != 1:
            raise other(
                f"{self.what} holds {len(packages)} SubmissionSet(s); exactly one is required.",
                f"{self.what} contient {len(packages)} SubmissionSet ; il en faut exactement un.",
            )
        package = packages[0]
        unique_id = package.external_ids.get(SS_UNIQUE_ID)
        source_id = package.external_ids.get(SS_SOURCE_ID)
        for label, value in (("uniqueId", unique_id), ("sourceId", source_id)):
            if not is_oid(value):
                self.warnings.append(f"{self.what}: SubmissionSet {label} {value!r} is not an OID.")
        patient = parse_cx(package.external_ids.get(SS_PATIENT_ID))
        if patient.problem:
            self.warnings.append(
                f"{self.what}: XDSSubmissionSet.patientId {patient.raw!r} is "
                f"unusable: {patient.problem}."
            )
        content = _codes(
            [c for c in package.classifications if c.get("classificationScheme") == SS_CONTENT_TYPE]
        )
        return SubmissionSet(
            entry_uuid=package.id,
            unique_id=unique_id,
            source_id=source_id,
            patient_id=patient,
            authors=_authors(
                [c for c in package.classifications if c.get("classificationScheme") == SS_AUTHOR]
            ),
            submission_time=parse_dtm(_first(package.slots, "submissionTime")),
            intended_recipients=tuple(v for v in package.slots.get("intendedRecipient", []) if v),
            title=package.name,
            content_type_code=content[0] if content else None,
            subset=self.subset.folder,
        )

    # -- files ----------------------------------------------------------------------------

    def _file(self, obj: RimObject) -> tuple[str, str | None, bytes]:
        """Find the bytes of an ExtrinsicObject and check its size and hash slots."""
        uri = _first(obj.slots, "URI")
        label = f"document entry {obj.id!r}" + (f" ({obj.name})" if obj.name else "")
        if uri is not None:
            lookup = resolve_uri(self.subset, uri, self.files)
            if lookup.note:
                self.warnings.append(f"{self.what}: {lookup.note}")
            path = lookup.path
            if path is None:
                raise self._missing(obj, label, uri, lookup)
        else:
            path = resolve_by_id(self.subset, obj.id)
            if path is None:
                raise other(
                    f"The {label} has no URI slot and no file of subset "
                    f"{self.subset.folder!r} is named after its id.",
                    f"La fiche {obj.id!r} n'a pas de slot URI et aucun fichier du sous-ensemble "
                    f"{self.subset.folder!r} ne porte son identifiant.",
                )
            self.warnings.append(
                f"{self.what}: {label} has no URI slot; file {path!r} found by its id."
            )
        self.referenced.add(path)
        content = self.files[path]
        self._check_size_and_hash(obj, label, path, content)
        return path, uri, content

    def _missing(self, obj: RimObject, label: str, uri: str, lookup: UriLookup) -> XdmError:
        """The refusal for a URI that names no file of the subset, saying where it looked."""
        if lookup.other_subset is not None:
            return other(
                f"The {label} refers to {uri!r}, which names {lookup.other_subset!r}, a file "
                f"outside its subset folder {self.subset.folder!r}.",
                f"La fiche {obj.id!r} désigne {uri!r}, c'est-à-dire {lookup.other_subset!r}, "
                f"un fichier hors de son sous-ensemble {self.subset.folder!r}.",
            )
        looked = " and ".join(repr(t) for t in lookup.tried)
        looked_fr = " et ".join(repr(t) for t in lookup.tried)
        return other(
            f"The {label} refers to the file {uri!r}, which is not in the zip (looked for "
            f"{looked}).",
            f"La fiche {obj.id!r} désigne le fichier {uri!r}, absent du zip (cherché {looked_fr}).",
        )

    def _check_size_and_hash(self, obj: RimObject, label: str, path: str, content: bytes) -> None:
        size, digest = _first(obj.slots, "size"), _first(obj.slots, "hash")
        actual = hashlib.sha1(content).hexdigest()
        if size is None:
            self.warnings.append(f"{self.what}: {label} has no size slot.")
        elif not size.isdigit():
            raise other(
                f"The {label} has a size slot {size!r} that is not a number.",
                f"La fiche {obj.id!r} a un slot size {size!r} qui n'est pas un nombre.",
            )
        elif int(size) != len(content):
            raise other(
                f"The {label} declares a size of {size} bytes but {path!r} has {len(content)}.",
                f"La fiche {obj.id!r} déclare une taille de {size} octets mais {path!r} en "
                f"fait {len(content)}.",
            )
        if digest is None:
            self.warnings.append(f"{self.what}: {label} has no hash slot.")
        elif not _SHA1.match(digest):
            raise other(
                f"The {label} has a hash slot {digest!r} that is not a SHA-1 in hex.",
                f"La fiche {obj.id!r} a un slot hash {digest!r} qui n'est pas un SHA-1 "
                "hexadécimal.",
            )
        elif digest.lower() != actual:
            raise other(
                f"The {label} declares the SHA-1 {digest.lower()} but {path!r} hashes to {actual}.",
                f"La fiche {obj.id!r} déclare le SHA-1 {digest.lower()} mais {path!r} a pour "
                f"empreinte {actual}.",
            )

    # -- entries --------------------------------------------------------------------------

    def _classified(self, obj: RimObject, scheme: str) -> list[Element]:
        return [c for c in obj.classifications if c.get("classificationScheme") == scheme]

    def _one(self, obj: RimObject, scheme: str) -> Coded | None:
        codes = _codes(self._classified(obj, scheme))
        return codes[0] if codes else None

    def _is_signature(self, obj: RimObject) -> bool:
        classes = [c.get("nodeRepresentation", "") for c in self._classified(obj, DE_CLASS)]
        formats = [c.get("nodeRepresentation", "") for c in self._classified(obj, DE_FORMAT)]
        return (
            any(c.removeprefix("urn:oid:") == DSG_CLASS for c in classes) or DSG_FORMAT in formats
        )

    def _targets(self, source: str, types: tuple[str, ...]) -> list[str]:
        return [
            a.attributes.get("targetObject", "")
            for a in self.associations
            if a.attributes.get("sourceObject") == source
            and a.attributes.get("associationType") in types
        ]

    def _signature(self, obj: RimObject) -> SignatureEntry:
        path, uri, content = self._file(obj)
        return SignatureEntry(
            entry_uuid=obj.id,
            unique_id=obj.external_ids.get(DE_UNIQUE_ID),
            mime_type=obj.attributes.get("mimeType"),
            size=len(content),
            hash=hashlib.sha1(content).hexdigest(),
            uri=uri,
            path=path,
            signs=tuple(self._targets(obj.id, SIGNS)),
            subset=self.subset.folder,
            data=content,
        )

    def _document(self, obj: RimObject) -> DocumentEntry:
        path, uri, content = self._file(obj)
        label = f"document entry {obj.id!r}"
        refusals: list[XdmError] = []
        unique_id = obj.external_ids.get(DE_UNIQUE_ID)
        if not unique_id:
            refusals.append(
                other(
                    f"The {label} has no XDSDocumentEntry.uniqueId.",
                    f"La fiche {obj.id!r} n'a pas de XDSDocumentEntry.uniqueId.",
                )
            )
        elif not is_oid(unique_id.split("^", 1)[0]):
            self.warnings.append(
                f"{self.what}: {label} uniqueId {unique_id!r} is not an OID (nor OID^extension)."
            )
        patient = parse_cx(obj.external_ids.get(DE_PATIENT_ID))
        source_id = _first(obj.slots, "sourcePatientId")
        ins, patient_refusals = judge_patient_id(label, obj.id, patient, source_id)
        refusals.extend(patient_refusals)
        if ins is not None and ins.key_ok is False:
            self.warnings.append(
                f"{self.what}: {label} INS {patient.id} has a wrong NIR key (flagged, not refused)."
            )
        set_patient = self.submission_set.patient_id
        if (
            not patient.problem
            and not set_patient.problem
            and ((patient.id, patient.authority_oid) != (set_patient.id, set_patient.authority_oid))
        ):
            refusals.append(
                other(
                    f"The {label} is for patient {patient.raw!r} but its SubmissionSet for "
                    f"{set_patient.raw!r}.",
                    f"La fiche {obj.id!r} concerne le patient {patient.raw!r} mais son "
                    f"SubmissionSet le patient {set_patient.raw!r}.",
                )
            )
        confidentiality = _codes(self._classified(obj, DE_CONFIDENTIALITY))
        refusals.extend(confidentiality_refusals(label, obj.id, confidentiality))
        action = self._action(obj, label, refusals)
        if obj.id not in self._targets(self.submission_set.entry_uuid, HAS_MEMBER):
            self.warnings.append(f"{self.what}: {label} is not a HasMember of the SubmissionSet.")
        replaces = self._targets(obj.id, REPLACES)
        absent = [
            label
            for label, scheme in (
                ("classCode", DE_CLASS),
                ("typeCode", DE_TYPE),
                ("formatCode", DE_FORMAT),
                ("confidentialityCode", DE_CONFIDENTIALITY),
            )
            if self._one(obj, scheme) is None
        ]
        absent += [] if _first(obj.slots, "creationTime") else ["creationTime"]
        if absent:
            self.warnings.append(
                f"{self.what}: {label} has no {', '.join(absent)} (optional "
                "in XDM, required by the DMP)."
            )
        created = _first(obj.slots, "creationTime")
        creation_time = parse_dtm(created)
        return DocumentEntry(
            entry_uuid=obj.id,
            unique_id=unique_id,
            patient_id=patient,
            ins=ins,
            source_patient_id=source_id,
            source_patient_info=tuple(obj.slots.get("sourcePatientInfo", [])),
            class_code=self._one(obj, DE_CLASS),
            type_code=self._one(obj, DE_TYPE),
            format_code=self._one(obj, DE_FORMAT),
            confidentiality_codes=confidentiality,
            healthcare_facility_type_code=self._one(obj, DE_FACILITY),
            practice_setting_code=self._one(obj, DE_PRACTICE),
            event_codes=_codes(self._classified(obj, DE_EVENT)),
            authors=_authors(self._classified(obj, DE_AUTHOR)),
            creation_time=creation_time,
            creation_time_local=(
                creation_time.replace(tzinfo=None)
                if creation_time and not dtm_has_offset(created)
                else None
            ),
            service_start_time=parse_dtm(_first(obj.slots, "serviceStartTime")),
            service_stop_time=parse_dtm(_first(obj.slots, "serviceStopTime")),
            mime_type=obj.attributes.get("mimeType"),
            size=len(content),
            hash=hashlib.sha1(content).hexdigest(),
            title=obj.name,
            comments=obj.description,
            language_code=_first(obj.slots, "languageCode"),
            uri=uri,
            path=path,
            action=action,
            replaces=replaces[0] if replaces else None,
            subset=self.subset.folder,
            refusals=tuple(refusals),
            data=content,
        )

    def _action(self, obj: RimObject, label: str, refusals: list[XdmError]) -> str | None:
        names = [n for n in obj.slots if n.lower() == "action" or n.lower().endswith(":action")]
        if not names:
            return None
        value = _first(obj.slots, names[0])
        if value not in ("C", "D"):
            refusals.append(
                other(
                    f"The {label} has an action slot {value!r}; only C (replace) and D (delete) "
                    "are defined.",
                    f"La fiche {obj.id!r} a un slot action {value!r} ; seuls C (remplacement) et D "
                    "(suppression) sont définis.",
                )
            )
            return None
        return value
