"""FHIR directory files for the import and API tests: the real ANS samples and a synthetic
hospital."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mss.directory.fhir_mailbox import EMAIL_TYPE_SYSTEM, MAILBOX_TYPE_SYSTEM, METADATA_URL
from mss.directory.identifiers import TRE_G15_SYSTEM

ANNUAIRE = "fhir/annuaire_Practitioner-3719500_bal-mss-per.json"
API_MSS = "fhir/api-mss_Practitioner-bal-per-dupont.json"
EMAIL_TYPE_URL = "https://interop.esante.gouv.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"


def sample(ans_data: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ans_data / name).read_text(encoding="utf-8"))
    return loaded


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": f"https://annuaire.example/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
            }
            for r in resources
        ],
    }


def mailbox(address: str, kind: str, *, red_list: bool = False) -> dict[str, Any]:
    """A ContactPoint as the Annuaire Santé writes an MSSanté mailbox."""
    return {
        "extension": [
            {
                "url": EMAIL_TYPE_URL,
                "valueCoding": {"system": EMAIL_TYPE_SYSTEM, "code": "MSSANTE"},
            },
            {
                "url": METADATA_URL,
                "extension": [
                    {
                        "url": "type",
                        "valueCodeableConcept": {
                            "coding": [{"system": MAILBOX_TYPE_SYSTEM, "code": kind}]
                        },
                    },
                    {"url": "listeRouge", "valueBoolean": red_list},
                ],
            },
        ],
        "system": "email",
        "value": address,
    }


def hospital_bundle() -> dict[str, Any]:
    """A hospital (ORG, APP and a red-listed ORG mailbox), a pharmacy, two doctors and a role."""
    hospital = {
        "resourceType": "Organization",
        "id": "org-hf",
        "name": "Hôpital Fictif",
        "identifier": [{"system": "https://finess.esante.gouv.fr", "value": "750712184"}],
        "type": [
            {
                "coding": [
                    {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/"
                        "FHIR/TRE-R02-SecteurActivite",
                        "code": "SA01",
                    }
                ]
            }
        ],
        "telecom": [
            mailbox("cardiologie@hopital-fictif.mssante.fr", "ORG"),
            mailbox("convocations@hopital-fictif.mssante.fr", "APP"),
            mailbox("direction@hopital-fictif.mssante.fr", "ORG", red_list=True),
            {"system": "phone", "value": "0102030405"},
        ],
    }
    pharmacy = {
        "resourceType": "Organization",
        "id": "org-ph",
        "name": "Pharmacie du Port",
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1130786049"}],
        "type": [{"coding": [{"code": "SA33"}]}],
        "telecom": [mailbox("pharmacie@pharmacie-du-port.mssante.fr", "ORG")],
    }
    martin = {
        "resourceType": "Practitioner",
        "id": "pr-martin",
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "801234567897"}],
        "name": [{"family": "MARTIN", "given": ["Claire"]}],
        "telecom": [mailbox("claire.martin@hopital-fictif.mssante.fr", "PER")],
    }
    durand = {
        "resourceType": "Practitioner",
        "id": "pr-durand",
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "899700367909"}],
        "name": [{"family": "DURAND", "given": ["Paul"]}],
        "telecom": [mailbox("paul.durand@hopital-fictif.mssante.fr", "PER", red_list=True)],
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": "role-martin",
        "practitioner": {"reference": "Practitioner/pr-martin"},
        "organization": {"reference": "Organization/org-hf"},
        "code": [{"coding": [{"system": TRE_G15_SYSTEM, "code": "10"}]}],
    }
    return bundle(role, martin, durand, hospital, pharmacy)


def write_json(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return str(path)
