"""FHIR R4 Appointment: the patient's agenda entries as resources, and a professional's new one
read strictly.

An appointment is ``booked`` (or ``cancelled``); its participants are the patient (by INS,
with their answer), who organises it (the professional who added it, by idNat, typed AUT,
or a convocation's organizer) and the place (typed LOC). A new appointment must say
``booked``, a ``start`` and an ``end`` with their offset, a ``description`` and the patient
as a participant by INS; anything else it says is refused by name rather than dropped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dmp_bridge.api_common import SANDBOX
from dmp_bridge.fhir_documents import INS_SYSTEMS, FhirInputError, patient_identifier
from mss.agenda.itip import build_feed
from mss.agenda.models import Appointment
from mss.agenda.sharing import ProfessionalAppointment
from mss.agenda.store import MAX_TEXT, event_data
from mss.db import utcnow
from mss.directory.models import Patient

Resource = dict[str, Any]
ID_NAT_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
UID_SYSTEM = "urn:ietf:rfc:5545"  # the iCalendar UID the agenda and its .ics feed share
ORIGIN_SYSTEM = "urn:mss:agenda:origin"
ANSWERS = {"needs-action": "needs-action", "accepted": "accepted", "declined": "declined"}
ACCEPTED_FIELDS = frozenset(
    {"resourceType", "status", "description", "start", "end", "comment", "participant"}
)
MAX_COMMENT = 2000
MAX_INS = 32


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _kind(code: str) -> list[Resource]:
    return [{"coding": [{"system": PARTICIPATION, "code": code}]}]


def appointment_resource(appointment: Appointment, patient: Patient) -> Resource:
    """One agenda entry as a FHIR Appointment."""
    participants: list[Resource] = [
        {
            "actor": {"identifier": patient_identifier(patient), "display": patient.display_name},
            "status": ANSWERS.get(appointment.response, "needs-action"),
        }
    ]
    if appointment.author_id_nat:
        participants.append(
            {
                "type": _kind("AUT"),
                "actor": {
                    "identifier": {"system": ID_NAT_SYSTEM, "value": appointment.author_id_nat},
                    "display": appointment.author_name or appointment.author_id_nat,
                },
                "status": "accepted",
            }
        )
    elif appointment.organizer or appointment.organizer_name:
        participants.append(
            {
                "type": _kind("ORG"),
                "actor": {"display": appointment.organizer_name or appointment.organizer},
                "status": "accepted",
            }
        )
    if appointment.location:
        participants.append(
            {"type": _kind("LOC"), "actor": {"display": appointment.location}, "status": "accepted"}
        )
    resource: Resource = {
        "resourceType": "Appointment",
        "id": str(appointment.id),
        "identifier": [{"system": UID_SYSTEM, "value": appointment.uid}],
        "meta": {"tag": [{"system": ORIGIN_SYSTEM, "code": appointment.origin}]},
        "status": "cancelled" if appointment.status == "cancelled" else "booked",
        "description": appointment.summary or "Rendez-vous",
        "start": _instant(appointment.starts_at),
        "end": _instant(appointment.ends_at),
        "created": appointment.created_at.astimezone(dt.UTC).date().isoformat(),
        "participant": participants,
    }
    if appointment.description:
        resource["comment"] = appointment.description
    return resource


@dataclass(frozen=True)
class NewAppointment:
    """A professional's new appointment, read: for whom, and what."""

    patient_ins: str
    wanted: ProfessionalAppointment


def calendar_response(patient: Patient, appointments: list[Appointment]) -> web.Response:
    """The agenda as an RFC 5545 feed (METHOD:PUBLISH), for a calendar application."""
    calendar = build_feed(
        [(event_data(a), a.status == "cancelled") for a in appointments],
        utcnow(),
        f"Agenda de {patient.display_name}",
    )
    return web.Response(
        text=calendar,
        headers={
            "Content-Type": "text/calendar; charset=utf-8",
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="agenda-{patient.ins}.ics"',
            **SANDBOX,
        },
    )


def _invalid(text: str) -> FhirInputError:
    return FhirInputError(422, "invalid", text)


def _moment(body: Resource, name: str) -> dt.datetime:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(
            f"Appointment.{name} is required (an instant such as 2027-03-01T09:30:00+01:00)"
        )
    shown = value[:60]
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"Appointment.{name} {shown!r} is not a FHIR instant") from None
    if moment.tzinfo is None or "T" not in value:
        raise _invalid(f"Appointment.{name} {shown!r} needs a time and its offset (Z or +01:00)")
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise _invalid(f"Appointment.{name} {shown!r} is out of range") from None


def _text(body: Resource, name: str, limit: int, *, required: bool = False) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise _invalid(f"Appointment.{name} must be a string")
    text = value.strip()
    if required and not text:
        raise _invalid(f"Appointment.{name} is required: what the appointment is for")
    if len(text) > limit:
        raise _invalid(f"Appointment.{name} is longer than {limit} characters")
    if any(not c.isprintable() and c not in "\n\t" for c in text):
        raise _invalid(f"Appointment.{name} contains control characters")
    return text


def _type_codes(types: Any) -> set[str]:
    """The codes of a participant's ``type`` (a list of CodeableConcept)."""
    if not isinstance(types, list):
        raise _invalid("Appointment.participant.type must be a list of CodeableConcept")
    codes: set[str] = set()
    for concept in types:
        codings = concept.get("coding", []) if isinstance(concept, dict) else None
        if not isinstance(codings, list):
            raise _invalid("Appointment.participant.type[].coding must be a list of Coding")
        codes.update(str(c.get("code")) for c in codings if isinstance(c, dict))
    return codes


def _patient_ins(participants: Any) -> tuple[str, str]:
    """The patient (by INS) and the place (a LOC participant's display), from the participants."""
    if not isinstance(participants, list) or not participants:
        raise _invalid("Appointment.participant must name the patient by INS")
    found: list[str] = []
    location = ""
    for participant in participants:
        actor = participant.get("actor") if isinstance(participant, dict) else None
        if not isinstance(actor, dict):
            raise _invalid("each Appointment.participant needs an actor")
        codes = _type_codes(participant.get("type", []))
        if "LOC" in codes:
            display = actor.get("display", "")
            if not isinstance(display, str):
                raise _invalid("the place (participant of type LOC) must be a display string")
            location = display
            continue
        identifier = actor.get("identifier")
        system = identifier.get("system") if isinstance(identifier, dict) else None
        if isinstance(identifier, dict) and isinstance(system, str) and system in INS_SYSTEMS:
            value = identifier.get("value")
            if not isinstance(value, str) or not value.strip():
                raise _invalid("the patient participant's INS is empty")
            if len(value.strip()) > MAX_INS:
                raise _invalid(f"the patient participant's INS {value[:40]!r} is not an INS")
            found.append(value.strip().upper())
        else:
            raise _invalid(
                "Appointment.participant may name only the patient (identifier "
                f"{' or '.join(sorted(INS_SYSTEMS))}) and the place (type LOC); the author "
                "is the authenticated professional"
            )
    if len(set(found)) != 1:
        raise _invalid("Appointment.participant must name exactly one patient by INS")
    return found[0], location


def parse_new_appointment(body: Any) -> NewAppointment:
    """A POSTed Appointment, strictly: every refusal says which field and why."""
    if not isinstance(body, dict) or body.get("resourceType") != "Appointment":
        raise FhirInputError(400, "invalid", "the body must be a FHIR Appointment resource")
    unknown = set(body) - ACCEPTED_FIELDS
    if unknown:
        raise _invalid(
            f"Appointment field(s) {', '.join(sorted(unknown))} are not accepted here; "
            f"this server reads {', '.join(sorted(ACCEPTED_FIELDS - {'resourceType'}))}"
        )
    if body.get("status") != "booked":
        raise _invalid("Appointment.status must be booked: the agenda takes fixed appointments")
    ins, location = _patient_ins(body.get("participant"))
    if len(location) > MAX_TEXT:
        raise _invalid(f"the place (participant of type LOC) is longer than {MAX_TEXT} characters")
    return NewAppointment(
        ins,
        ProfessionalAppointment(
            starts_at=_moment(body, "start"),
            ends_at=_moment(body, "end"),
            summary=_text(body, "description", MAX_TEXT, required=True),
            location=" ".join(location.split()),
            description=_text(body, "comment", MAX_COMMENT),
        ),
    )
