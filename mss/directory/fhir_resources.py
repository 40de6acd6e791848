"""Directory rows as FHIR R4 resources, in the Annuaire Santé shape.

The callers pass only the mailboxes that may be published (see
``fhir_api.published``); these functions never filter.
"""

from __future__ import annotations

from typing import Any

from mss.directory.fhir_mailbox import contact_point
from mss.directory.identifiers import (
    FINESS_SYSTEMS,
    IDNPS_SYSTEM,
    IDNST_SYSTEM,
    PROFESSIONS,
    RPPS_SYSTEMS,
    TRE_G15_SYSTEM,
)
from mss.directory.models import Mailbox, Organisation, Professional

IDENTIFIER_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
Resource = dict[str, Any]


def _identifier(type_code: str, system: str, value: str) -> Resource:
    return {
        "use": "official",
        "type": {"coding": [{"system": IDENTIFIER_TYPES, "code": type_code}]},
        "system": system,
        "value": value,
    }


def _profession(code: str) -> Resource:
    return {
        "coding": [{"system": TRE_G15_SYSTEM, "code": code, "display": PROFESSIONS.get(code, code)}]
    }


def _with_telecom(resource: Resource, mailboxes: list[Mailbox]) -> Resource:
    if mailboxes:
        resource["telecom"] = [contact_point(mailbox) for mailbox in mailboxes]
    return resource


def practitioner_resource(professional: Professional, mailboxes: list[Mailbox]) -> Resource:
    """A Practitioner with its idNat (and RPPS), name, profession and published mailboxes."""
    identifiers = [_identifier("IDNPS", IDNPS_SYSTEM, professional.id_nat)]
    if professional.id_nat.startswith("8") and len(professional.id_nat) == 12:
        identifiers.append(_identifier("RPPS", RPPS_SYSTEMS[0], professional.id_nat[1:]))
    name: Resource = {"use": "usual", "family": professional.family_name}
    if professional.given_names:
        name["given"] = professional.given_names.split()
    resource: Resource = {
        "resourceType": "Practitioner",
        "id": str(professional.id),
        "identifier": identifiers,
        "active": True,
        "name": [name],
    }
    _with_telecom(resource, mailboxes)
    if professional.profession_code:
        resource["qualification"] = [{"code": _profession(professional.profession_code)}]
    return resource


def role_resource(
    professional: Professional, organisation: Organisation | None, mailboxes: list[Mailbox]
) -> Resource:
    """The professional's practice: who, where, which profession, which mailboxes."""
    resource: Resource = {
        "resourceType": "PractitionerRole",
        "id": str(professional.id),
        "active": True,
        "practitioner": {
            "reference": f"Practitioner/{professional.id}",
            "display": professional.display_name,
        },
    }
    if organisation is not None:
        resource["organization"] = {
            "reference": f"Organization/{organisation.id}",
            "display": organisation.name,
        }
    if professional.profession_code:
        resource["code"] = [_profession(professional.profession_code)]
    return _with_telecom(resource, mailboxes)


def organisation_resource(organisation: Organisation, mailboxes: list[Mailbox]) -> Resource:
    """An Organization with its FINESS (and IDNST), name and published ORG/APP/CAB mailboxes."""
    identifiers = []
    if organisation.finess:
        identifiers = [
            _identifier("FINEG", FINESS_SYSTEMS[0], organisation.finess),
            _identifier("IDNST", IDNST_SYSTEM, "1" + organisation.finess),
        ]
    resource: Resource = {
        "resourceType": "Organization",
        "id": str(organisation.id),
        "active": True,
        "name": organisation.name,
    }
    if identifiers:
        resource["identifier"] = identifiers
    return _with_telecom(resource, mailboxes)
