"""FHIR R4 views of the patient's medical profile and dispensations, and the input a professional
sends: AllergyIntolerance and MedicationStatement (profile items), MedicationDispense (an item of
an eDISP-MED document).

Pure functions over rows and JSON; ``dmp_bridge.clinical_api`` authenticates, applies consent and
calls these. A resource sent for creation is read field by field: anything this server would drop
or misread is refused with the element's path, never ignored silently.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from dmp_bridge.dispensation import MEDICINE_SYSTEMS
from dmp_bridge.dispensations import Dispensation
from dmp_bridge.fhir_documents import (
    INS_SYSTEMS,
    FhirInputError,
    Resource,
    patient_identifier,
    system_url,
)
from dmp_bridge.ins import INS_NIR_OID
from dmp_bridge.xdm_model import IDNAT_OID
from mss.directory.models import Patient
from mss.profile.models import ProfileItem
from mss.profile.store import MAX_DETAIL, MAX_LABEL

ALLERGY = "AllergyIntolerance"
STATEMENT = "MedicationStatement"
DISPENSE = "MedicationDispense"
CATEGORY_OF = {ALLERGY: "allergy", STATEMENT: "treatment"}
RESOURCE_OF = {category: kind for kind, category in CATEGORY_OF.items()}
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
STATEMENT_STATUSES = frozenset(
    {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown"}
)
ALLERGY_STATUSES = frozenset({"active", "inactive", "resolved"})
IDNAT_SYSTEM = f"urn:oid:{IDNAT_OID}"
_URI = re.compile(r"^(urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+|https?://\S+)$")
MAX_WHEN = 32
MAX_CODE = 64
# Elements read on creation; any other is refused (the server would drop it).
KNOWN = {
    ALLERGY: frozenset(
        {"resourceType", "meta", "text", "clinicalStatus", "code", "patient", "note", "onsetString"}
    ),
    STATEMENT: frozenset(
        {
            "resourceType",
            "meta",
            "text",
            "status",
            "medicationCodeableConcept",
            "subject",
            "dosage",
            "note",
        }
    ),
}


@dataclass(frozen=True)
class ProfileEntry:
    """A profile item as a professional sent it, checked."""

    category: str
    patient_ins: str
    label: str
    code: str
    code_system: str
    detail: str
    when: str


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _concept(item: ProfileItem) -> Resource:
    concept: Resource = {"text": item.label}
    if item.code:
        concept["coding"] = [{"system": item.code_system, "code": item.code, "display": item.label}]
    return concept


def _author(item: ProfileItem, patient: Patient) -> Resource:
    """Who recorded the item: the professional by idNat and name, or the patient."""
    if item.author_kind == "professional":
        return {
            "type": "Practitioner",
            "identifier": {"system": IDNAT_SYSTEM, "value": item.author},
            "display": item.author_name or item.author,
        }
    if item.author_kind == "guardian":
        return {"type": "RelatedPerson", "display": "Représentant légal du patient"}
    return {"type": "Patient", "identifier": patient_identifier(patient), "display": "Le patient"}


def _subject(patient: Patient) -> Resource:
    return {"identifier": patient_identifier(patient), "display": patient.display_name}


def profile_resource(item: ProfileItem, patient: Patient) -> Resource:
    """An allergy as AllergyIntolerance, a treatment as MedicationStatement."""
    notes = [{"text": item.detail}] if item.detail and item.category == "allergy" else []
    if item.when and item.category == "treatment":
        notes.append({"text": f"Depuis : {item.when}"})
    if item.category == "allergy":
        resource: Resource = {
            "resourceType": ALLERGY,
            "id": str(item.id),
            "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
            "code": _concept(item),
            "patient": _subject(patient),
            "recordedDate": _instant(item.created_at),
            "recorder": _author(item, patient),
        }
        if item.when:
            resource["onsetString"] = item.when
    else:
        resource = {
            "resourceType": STATEMENT,
            "id": str(item.id),
            "status": "active",
            "medicationCodeableConcept": _concept(item),
            "subject": _subject(patient),
            "dateAsserted": _instant(item.created_at),
            "informationSource": _author(item, patient),
        }
        if item.detail:
            resource["dosage"] = [{"text": item.detail}]
    if notes:
        resource["note"] = notes
    return resource


def medication_dispense(line: Dispensation, patient: Patient) -> Resource:
    """One dispensed item as MedicationDispense (status completed, the pharmacy as performer)."""
    item = line.item
    medication: Resource = {"text": item.medicine}
    if item.code:
        coding: Resource = {
            "system": system_url(item.code_system),
            "code": item.code,
            "display": item.medicine,
        }
        medication["coding"] = [coding]
    resource: Resource = {
        "resourceType": DISPENSE,
        "id": line.resource_id,
        "status": "completed",
        "medicationCodeableConcept": medication,
        "subject": _subject(patient),
        "whenHandedOver": _instant(line.when),
        "supportingInformation": [{"reference": f"DocumentReference/{line.document_id}"}],
    }
    if item.quantity is not None:
        resource["quantity"] = {"value": float(item.quantity), "unit": item.unit or None}
        resource["quantity"] = {k: v for k, v in resource["quantity"].items() if v is not None}
    if item.dose:
        resource["dosageInstruction"] = [{"text": item.dose}]
    if item.pharmacy:
        actor: Resource = {"type": "Organization", "display": item.pharmacy}
        if item.pharmacy_id:
            actor["identifier"] = {
                "system": "urn:oid:1.2.250.1.71.4.2.2",
                "value": item.pharmacy_id,
            }
        resource["performer"] = [{"actor": actor}]
    return resource


def medicine_system_name(oid: str) -> str:
    return MEDICINE_SYSTEMS.get(oid, oid)


def _invalid(text: str) -> FhirInputError:
    return FhirInputError(422, "invalid", text)


def _plain(value: Any, path: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise _invalid(f"{path} is required")
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{path} must be a string")
    text = " ".join(value.split())
    if required and not text:
        raise _invalid(f"{path} is required and is empty")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise _invalid(f"{path} contains control or invisible characters")
    if len(text) > limit:
        raise _invalid(f"{path} is longer than {limit} characters")
    return text


def _subject_ins(resource: Resource, element: str) -> str:
    reference = resource.get(element)
    identifier = reference.get("identifier") if isinstance(reference, dict) else None
    system = identifier.get("system") if isinstance(identifier, dict) else None
    value = identifier.get("value") if isinstance(identifier, dict) else None
    if system not in INS_SYSTEMS or not isinstance(value, str) or not value.strip():
        raise _invalid(
            f"{element}.identifier must name the patient by INS "
            f"(system urn:oid:{INS_NIR_OID}, value the 15-character matricule)"
        )
    return value.strip().upper()


def _coded(resource: Resource, element: str) -> tuple[str, str, str]:
    """(label, code, system) of a CodeableConcept: its text, else its first coding's display."""
    concept = resource.get(element)
    if not isinstance(concept, dict):
        raise _invalid(f"{element} is required: a CodeableConcept with text or a coding")
    codings = concept.get("coding", [])
    if not isinstance(codings, list) or len(codings) > 1:
        raise _invalid(f"{element}.coding must be a list of at most one coding")
    code = system = display = ""
    if codings:
        coding = codings[0]
        if not isinstance(coding, dict):
            raise _invalid(f"{element}.coding[0] must be an object")
        code = _plain(coding.get("code"), f"{element}.coding[0].code", MAX_CODE, required=True)
        system = _plain(coding.get("system"), f"{element}.coding[0].system", 255, required=True)
        if not _URI.match(system):
            raise _invalid(
                f"{element}.coding[0].system {system!r} is not a URI: write urn:oid:<OID> "
                "(for example urn:oid:1.2.250.1.213.2.3.2 for a CIP code) or an http(s) URL"
            )
        display = _plain(coding.get("display"), f"{element}.coding[0].display", MAX_LABEL)
    label = _plain(concept.get("text"), f"{element}.text", MAX_LABEL) or display
    if not label:
        raise _invalid(
            f"{element} needs a text (or a coding display): the patient reads it in their profile"
        )
    return label, code, system


def _notes(resource: Resource) -> list[str]:
    notes = resource.get("note", [])
    if not isinstance(notes, list):
        raise _invalid("note must be a list of annotations")
    texts = []
    for n, note in enumerate(notes):
        if not isinstance(note, dict):
            raise _invalid(f"note[{n}] must be an annotation")
        texts.append(_plain(note.get("text"), f"note[{n}].text", MAX_DETAIL, required=True))
    return texts


def _status(resource: Resource, kind: str) -> None:
    if kind == STATEMENT:
        status = resource.get("status")
        if status not in STATEMENT_STATUSES:
            raise _invalid(
                "MedicationStatement.status is required, one of "
                + ", ".join(sorted(STATEMENT_STATUSES))
            )
        if status != "active":
            raise _invalid(
                f"MedicationStatement.status {status!r}: the profile lists the treatments taken "
                "now; only active is recorded"
            )
        return
    clinical = resource.get("clinicalStatus")
    if clinical is None:
        return
    codings = clinical.get("coding") if isinstance(clinical, dict) else None
    coding = codings[0] if isinstance(codings, list) and codings else None
    code = coding.get("code") if isinstance(coding, dict) else None
    if (
        not isinstance(coding, dict)
        or coding.get("system") != ALLERGY_CLINICAL
        or (code not in ALLERGY_STATUSES)
    ):
        raise _invalid(
            f"AllergyIntolerance.clinicalStatus must be a coding of {ALLERGY_CLINICAL} "
            f"({', '.join(sorted(ALLERGY_STATUSES))})"
        )
    if code != "active":
        raise _invalid(
            f"AllergyIntolerance.clinicalStatus {code!r}: the profile lists the allergies that "
            "apply now; only active is recorded"
        )


def parse_profile_entry(body: Any, kind: str) -> ProfileEntry:
    """Read an AllergyIntolerance or MedicationStatement sent for creation (422 on bad input)."""
    if not isinstance(body, dict):
        raise _invalid(f"the body must be a FHIR {kind} resource (a JSON object)")
    if body.get("resourceType") != kind:
        raise _invalid(
            f"resourceType is {body.get('resourceType')!r}; this endpoint creates {kind}"
        )
    unknown = sorted(set(body) - KNOWN[kind] - {"id"})
    if unknown:
        raise _invalid(
            f"{kind} elements not read by this server: {', '.join(unknown)} "
            f"(it reads {', '.join(sorted(KNOWN[kind] - {'resourceType', 'meta', 'text'}))}); "
            "nothing was recorded"
        )
    _status(body, kind)
    notes = _notes(body)
    if kind == ALLERGY:
        ins = _subject_ins(body, "patient")
        label, code, system = _coded(body, "code")
        when = _plain(body.get("onsetString"), "onsetString", MAX_WHEN)
        detail = " ".join(notes)
    else:
        ins = _subject_ins(body, "subject")
        if "medicationReference" in body:
            raise _invalid("send medicationCodeableConcept, not medicationReference")
        label, code, system = _coded(body, "medicationCodeableConcept")
        dosage = body.get("dosage", [])
        if not isinstance(dosage, list) or len(dosage) > 1:
            raise _invalid("dosage must be a list of at most one Dosage")
        dose = (
            _plain(dosage[0].get("text"), "dosage[0].text", MAX_DETAIL, required=True)
            if dosage and isinstance(dosage[0], dict)
            else ""
        )
        if dosage and not isinstance(dosage[0], dict):
            raise _invalid("dosage[0] must be a Dosage object")
        when = ""
        detail = " ".join([dose, *notes]).strip()
    if len(detail) > MAX_DETAIL:
        raise _invalid(f"the notes and dosage are longer than {MAX_DETAIL} characters together")
    return ProfileEntry(CATEGORY_OF[kind], ins, label, code, system, detail, when)
