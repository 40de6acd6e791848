"""FHIR R4 Observation as a connected service writes it: a weight or a blood sugar, strictly read.

Accepted: ``resourceType`` Observation; ``status`` final, amended or preliminary (FHIR's
ObservationStatus; the others do not record a new measurement); ``code`` one LOINC
coding of ``MEASURES``; ``subject`` the space's patient by INS identifier; an
``effectiveDateTime`` with its offset, not in the future; a ``valueQuantity`` in the
UCUM unit the code takes, within a plausible range. Any other element, or one missing,
is refused with a sentence (an OperationOutcome at the API).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INS_SYSTEMS = ("urn:oid:1.2.250.1.213.1.4.8", "urn:oid:1.2.250.1.213.1.4.10")
STATUSES = ("final", "amended", "preliminary")
ELEMENTS = frozenset(
    {"resourceType", "status", "category", "code", "subject", "effectiveDateTime", "valueQuantity"}
)
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Measure:
    """One kind of measurement: its LOINC code, French label, UCUM unit and plausible range."""

    code: str
    label: str
    unit: str
    low: float
    high: float


MEASURES = {
    m.code: m
    for m in (
        Measure("29463-7", "Poids", "kg", 0.3, 400.0),
        Measure("2339-0", "Glycémie", "mg/dL", 10.0, 1000.0),
        Measure("15074-8", "Glycémie", "mmol/L", 0.5, 55.0),
    )
}


class ObservationRefused(Exception):
    """The Observation is not one the hub stores; ``sentence`` says why."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


@dataclass(frozen=True)
class ParsedObservation:
    code: str
    value: float
    unit: str
    status: str
    effective_at: dt.datetime
    subject_ins: str


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ObservationRefused(f"{where} must be a JSON object")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ObservationRefused(f"{where} must be a non-empty string")
    return value


def _code(body: dict[str, Any]) -> Measure:
    code = _object(body.get("code"), "code")
    codings = code.get("coding")
    if not isinstance(codings, list) or len(codings) != 1:
        raise ObservationRefused("code.coding must hold exactly one LOINC coding")
    coding = _object(codings[0], "code.coding[0]")
    if coding.get("system") != LOINC:
        raise ObservationRefused(f"code.coding[0].system must be {LOINC}")
    value = _string(coding.get("code"), "code.coding[0].code")
    if value not in MEASURES:
        known = ", ".join(f"{m.code} ({m.label}, {m.unit})" for m in MEASURES.values())
        raise ObservationRefused(f"code {value} is not a measurement this hub keeps: {known}")
    return MEASURES[value]


def _subject(body: dict[str, Any]) -> str:
    subject = _object(body.get("subject"), "subject")
    identifier = _object(subject.get("identifier"), "subject.identifier")
    if identifier.get("system") not in INS_SYSTEMS:
        raise ObservationRefused(
            f"subject.identifier.system must be {INS_SYSTEMS[0]} (INS) or the test OID"
        )
    return _string(identifier.get("value"), "subject.identifier.value").strip()


def _effective(body: dict[str, Any], now: dt.datetime) -> dt.datetime:
    text = _string(body.get("effectiveDateTime"), "effectiveDateTime")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ObservationRefused(
            "effectiveDateTime must be a FHIR dateTime with its time and offset "
            "(2026-03-01T08:30:00+01:00)"
        ) from None
    if when.tzinfo is None or "T" not in text:
        raise ObservationRefused("effectiveDateTime must give the time and its offset")
    if when > now + CLOCK_SKEW:
        raise ObservationRefused("effectiveDateTime is in the future")
    return when.astimezone(dt.UTC)


def _quantity(body: dict[str, Any], measure: Measure) -> float:
    quantity = _object(body.get("valueQuantity"), "valueQuantity")
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ObservationRefused("valueQuantity.value must be a number")
    if quantity.get("system") != UCUM or quantity.get("code") != measure.unit:
        raise ObservationRefused(
            f"valueQuantity must be in {measure.unit} (system {UCUM}, code {measure.unit})"
        )
    if not measure.low <= float(value) <= measure.high:
        raise ObservationRefused(
            f"{measure.label} {value} {measure.unit} is outside {measure.low}-{measure.high}"
        )
    return float(value)


def parse_observation(body: Any, now: dt.datetime) -> ParsedObservation:
    """The measurement of a FHIR Observation, or ``ObservationRefused``."""
    resource = _object(body, "the body")
    if resource.get("resourceType") != "Observation":
        raise ObservationRefused("resourceType must be Observation")
    unknown = set(resource) - ELEMENTS
    if unknown:
        raise ObservationRefused(
            f"element(s) not accepted here: {', '.join(sorted(unknown))}; "
            f"accepted: {', '.join(sorted(ELEMENTS))}"
        )
    status = resource.get("status")
    if status not in STATUSES:
        raise ObservationRefused(f"status must be one of {', '.join(STATUSES)}")
    measure = _code(resource)
    if "category" in resource and not isinstance(resource["category"], list):
        raise ObservationRefused("category must be a list of CodeableConcept")
    return ParsedObservation(
        code=measure.code,
        value=_quantity(resource, measure),
        unit=measure.unit,
        status=str(status),
        effective_at=_effective(resource, now),
        subject_ins=_subject(resource),
    )


def observation_resource(
    ident: int, parsed: ParsedObservation, ins: str, system: str = INS_SYSTEMS[0]
) -> dict[str, Any]:
    """The stored measurement as a FHIR Observation."""
    measure = MEASURES[parsed.code]
    return {
        "resourceType": "Observation",
        "id": str(ident),
        "status": parsed.status,
        "code": {"coding": [{"system": LOINC, "code": measure.code, "display": measure.label}]},
        "subject": {"identifier": {"system": system, "value": ins}},
        "effectiveDateTime": parsed.effective_at.isoformat(),
        "valueQuantity": {
            "value": parsed.value,
            "unit": measure.unit,
            "system": UCUM,
            "code": measure.unit,
        },
    }
