"""FHIR R4 views of the record for the MHD API: DocumentReference, Binary, Bundles, and ITI-65
input.

Pure functions over rows and JSON: the HTTP layer (``dmp_bridge.api``)
authenticates, applies consent and calls these to speak FHIR.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from dmp_bridge.documents import DocumentDraft
from dmp_bridge.ins import INS_NIR_OID, INS_NIR_TEST_OID
from dmp_bridge.models import REPLACED, DmpDocument
from dmp_bridge.xdm_model import (
    CONFIDENTIALITY_FR,
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
)
from mss.directory.models import Patient
from mss.policy.dmp_metadata import (
    CONFIDENTIALITY_HL7,
    decide_confidentiality,
    decide_dmp_format,
    dmp_flags,
)

FHIR_JSON = "application/fhir+json"
INS_SYSTEMS = {
    f"urn:oid:{INS_NIR_OID}": INS_NIR_OID,
    f"urn:oid:{INS_NIR_TEST_OID}": INS_NIR_TEST_OID,
}
LOINC_OID = "2.16.840.1.113883.6.1"
LOINC_URL = "http://loinc.org"
FLAG_SYSTEM = f"urn:oid:{CONFIDENTIALITY_FR}"
HL7_CONFIDENTIALITY_URL = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_OID = re.compile(r"^[0-2](\.(0|[1-9]\d*))+$")
Resource = dict[str, Any]


class FhirInputError(Exception):
    """A request the API cannot accept: HTTP status, OperationOutcome issue code, sentence."""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def operation_outcome(code: str, text: str, severity: str = "error") -> Resource:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def system_url(system: str) -> str:
    """A coding system as a FHIR URI: LOINC's URL, ``urn:oid:`` for an OID, else as is."""
    if system in (LOINC_OID, "LOINC", LOINC_URL):
        return LOINC_URL
    return f"urn:oid:{system}" if _OID.match(system) else system


def system_oid(url: str) -> str:
    if url == LOINC_URL:
        return LOINC_OID
    return url.removeprefix("urn:oid:")


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _coding(code: str, system: str, display: str) -> Resource:
    coding: Resource = {"code": code}
    if system:
        coding["system"] = system_url(system)
    if display:
        coding["display"] = display
    return coding


def patient_identifier(patient: Patient, system: str = INS_NIR_OID) -> Resource:
    return {"system": f"urn:oid:{system}", "value": patient.ins}


def _flags(document: DmpDocument) -> list[Resource]:
    flags = [
        (document.masked_from_professionals, MASQUE_PS),
        (document.invisible_to_patient, INVISIBLE_PATIENT),
        (document.invisible_to_legal_representatives, INVISIBLE_REPRESENTANTS_LEGAUX),
    ]
    return [{"coding": [{"system": FLAG_SYSTEM, "code": code}]} for on, code in flags if on]


def document_reference(
    document: DmpDocument, patient: Patient, base: str, replaces: int | None = None
) -> Resource:
    """One document as an MHD DocumentReference (content URLs point at Binary)."""
    attachment: Resource = {
        "contentType": document.mime_type,
        "url": f"{base}/fhir/Binary/{document.id}",
        "size": document.size,
        "title": document.title or "document",
        "hash": base64.b64encode(bytes.fromhex(document.sha1)).decode() if document.sha1 else None,
    }
    if document.creation_time is not None:
        attachment["creation"] = _instant(document.creation_time)
    content = [{"attachment": {k: v for k, v in attachment.items() if v is not None}}]
    if document.has_pdf:
        content.append(
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": f"{base}/fhir/Binary/{document.id}-pdf",
                    "title": f"{document.title or 'document'} (PDF)",
                }
            }
        )
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": str(document.id),
        "masterIdentifier": {"value": document.unique_id},
        "status": "superseded" if document.status == REPLACED else "current",
        "subject": {"identifier": patient_identifier(patient), "display": patient.display_name},
        "date": _instant(document.filed_at),
        "content": content,
    }
    if document.entry_uuid.startswith("urn:uuid:"):
        resource["identifier"] = [{"system": "urn:ietf:rfc:3986", "value": document.entry_uuid}]
    if document.type_code:
        resource["type"] = {
            "coding": [_coding(document.type_code, document.type_system, document.type_label)]
        }
    if document.class_code:
        resource["category"] = [
            {"coding": [_coding(document.class_code, document.class_system, document.class_label)]}
        ]
    if document.title:
        resource["description"] = document.title
    author = _author(document)
    if author:
        resource["author"] = [author]
    if flags := _flags(document):
        resource["securityLabel"] = flags
    if replaces is not None:
        resource["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{replaces}"}}
        ]
    return resource


def _author(document: DmpDocument) -> Resource:
    author: Resource = {}
    if document.author_id_nat:
        author["identifier"] = {
            "system": "urn:oid:1.2.250.1.71.4.2.1",
            "value": document.author_id_nat,
        }
    display = ", ".join(p for p in (document.author_name, document.author_institution) if p)
    if display:
        author["display"] = display
    return author


def search_bundle(entries: list[Resource], self_url: str) -> Resource:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{self_url.split('/fhir/')[0]}/fhir/{e['resourceType']}/{e['id']}",
                "resource": e,
                "search": {"mode": "match"},
            }
            for e in entries
        ],
    }


def binary_resource(binary_id: str, content_type: str, data: bytes) -> Resource:
    return {
        "resourceType": "Binary",
        "id": binary_id,
        "contentType": content_type,
        "data": base64.b64encode(data).decode("ascii"),
    }


def parse_patient_identifier(value: str) -> tuple[str, str]:
    """``urn:oid:<INS OID>|<INS>`` -> (OID, INS); the production and the test INS-NIR OIDs."""
    system, sep, ins = value.partition("|")
    if not sep or system not in INS_SYSTEMS or not ins.strip():
        raise FhirInputError(
            400,
            "invalid",
            "patient.identifier must be "
            f"urn:oid:{INS_NIR_OID}|<INS> (or the test OID {INS_NIR_TEST_OID})",
        )
    return INS_SYSTEMS[system], ins.strip()


@dataclass
class ProvidedDocument:
    """One DocumentReference of an ITI-65 transaction with its Binary."""

    patient_oid: str
    patient_ins: str
    draft: DocumentDraft
    replaces_id: int | None = None
    full_url: str = ""


@dataclass
class ProvideRequest:
    documents: list[ProvidedDocument] = field(default_factory=list)


def _invalid(text: str) -> FhirInputError:
    return FhirInputError(422, "invalid", text)


def parse_provide_bundle(body: Any) -> ProvideRequest:
    """Read an ITI-65 transaction Bundle: DocumentReference + Binary pairs (List entries
    ignored)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise _invalid("the body must be a FHIR Bundle")
    if body.get("type") != "transaction":
        raise _invalid("the Bundle must be of type transaction (ITI-65)")
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        raise _invalid("the Bundle has no entry")
    binaries: dict[str, Resource] = {}
    references: list[tuple[str, Resource]] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise _invalid("every Bundle entry needs a resource")
        kind = resource.get("resourceType")
        if kind == "Binary":
            binaries[str(entry.get("fullUrl", ""))] = resource
        elif kind == "DocumentReference":
            references.append((str(entry.get("fullUrl", "")), resource))
        elif kind != "List":
            raise _invalid(f"{kind} is not accepted in a provide transaction")
    if not references:
        raise _invalid("the Bundle holds no DocumentReference")
    return ProvideRequest([_provided(full_url, ref, binaries) for full_url, ref in references])


def _provided(
    full_url: str, reference: Resource, binaries: dict[str, Resource]
) -> ProvidedDocument:
    identifier = (reference.get("subject") or {}).get("identifier") or {}
    system = str(identifier.get("system", ""))
    if system not in INS_SYSTEMS or not identifier.get("value"):
        raise _invalid(
            f"DocumentReference.subject.identifier must be an INS (urn:oid:{INS_NIR_OID})"
        )
    content = reference.get("content") or []
    attachment = (content[0] or {}).get("attachment") if content else None
    if not isinstance(attachment, dict):
        raise _invalid("DocumentReference.content[0].attachment is missing")
    content_type = _format(attachment)
    data = _attachment_data(attachment, binaries)
    flags = _provided_flags(reference)
    type_coding = ((reference.get("type") or {}).get("coding") or [{}])[0]
    category = ((reference.get("category") or [{}])[0].get("coding") or [{}])[0]
    draft = DocumentDraft(
        content=data,
        mime_type=content_type,
        title=str(reference.get("description") or attachment.get("title") or "document"),
        unique_id=str((reference.get("masterIdentifier") or {}).get("value") or ""),
        type_code=str(type_coding.get("code", "")),
        type_system=system_oid(str(type_coding.get("system", ""))),
        type_label=str(type_coding.get("display", "")),
        class_code=str(category.get("code", "")),
        class_system=system_oid(str(category.get("system", ""))),
        class_label=str(category.get("display", "")),
        masked_from_professionals=MASQUE_PS in flags,
        invisible_to_patient=INVISIBLE_PATIENT in flags,
        invisible_to_legal_representatives=INVISIBLE_REPRESENTANTS_LEGAUX in flags,
        source="api",
    )
    return ProvidedDocument(
        INS_SYSTEMS[system], str(identifier["value"]).strip(), draft, _replaces(reference), full_url
    )


def _attachment_data(attachment: Resource, binaries: dict[str, Resource]) -> bytes:
    encoded = attachment.get("data")
    if encoded is None:
        binary = binaries.get(str(attachment.get("url", "")))
        if binary is None:
            raise _invalid(
                "the attachment's url names no Binary of the Bundle (and it has no data)"
            )
        encoded = binary.get("data")
    try:
        return base64.b64decode(str(encoded or ""), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("the document's data is not valid base64") from None


def _label_codes(reference: Resource) -> tuple[tuple[str, str], ...]:
    """Every securityLabel coding as (scheme OID, code); a system that is not a FHIR URI is 422."""
    codes: list[tuple[str, str]] = []
    for label in reference.get("securityLabel") or []:
        codings = label.get("coding") if isinstance(label, dict) else None
        if not isinstance(codings, list) or not codings:
            raise _invalid("every securityLabel needs a coding (system and code)")
        for coding in codings:
            system = str(coding.get("system", "")) if isinstance(coding, dict) else ""
            code = str(coding.get("code", "")) if isinstance(coding, dict) else ""
            if system == HL7_CONFIDENTIALITY_URL:
                scheme = CONFIDENTIALITY_HL7
            elif system.startswith("urn:oid:") and _OID.match(system.removeprefix("urn:oid:")):
                scheme = system.removeprefix("urn:oid:")
            elif _OID.match(system):
                raise _invalid(
                    f"securityLabel system {system!r} is a bare OID: a FHIR system is a "
                    f"URI, write urn:oid:{system}; the label was not read, nothing is filed"
                )
            else:
                raise _invalid(
                    f"securityLabel system {system!r} is not one this server reads "
                    f"(urn:oid:{CONFIDENTIALITY_FR} for the DMP visibility flags, "
                    f"{HL7_CONFIDENTIALITY_URL} for the level N); nothing is filed"
                )
            codes.append((scheme, code))
    return tuple(codes)


def _provided_flags(reference: Resource) -> frozenset[str]:
    """The DMP visibility flags; any confidentiality code not read with certainty is 422."""
    codes = _label_codes(reference)
    decision = decide_confidentiality(codes)
    if not decision:
        raise _invalid(f"{decision.code}: {decision.sentence}")
    return dmp_flags(codes)


def _format(attachment: Resource) -> str:
    """The attachment's contentType when the DMP holds that format (422 naming the accepted
    ones)."""
    content_type = str(attachment.get("contentType") or "")
    decision = decide_dmp_format(content_type)
    if not decision:
        raise _invalid(f"{decision.code}: {decision.sentence}")
    return content_type


def _replaces(reference: Resource) -> int | None:
    for relation in reference.get("relatesTo") or []:
        if relation.get("code") != "replaces":
            raise _invalid(
                f"relatesTo code {relation.get('code')!r} is not supported; use replaces"
            )
        target = str((relation.get("target") or {}).get("reference", ""))
        kind, _, ident = target.rpartition("/")
        if not kind.endswith("DocumentReference") or not ident.isdigit():
            raise _invalid("relatesTo.target must reference DocumentReference/<id> of this server")
        return int(ident)
    return None
