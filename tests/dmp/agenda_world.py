"""The DMP world's patient with an agenda: one convocation and one own appointment, and a way
to set the sharing choice."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mss.agenda.models import Appointment
from mss.agenda.sharing import set_sharing
from mss.db import utcnow
from mss.directory.models import Patient
from mss.patients import Actor
from mss.policy.agenda import AgendaSharing
from tests.dmp.conftest import World
from tests.xdm_factory import INS

AGENDA_SEARCH = f"/fhir/Appointment?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{INS}"
FEED = f"/agenda/{INS}.ics"
CONVOCATION = "IRM cérébrale, service de neurologie"
OWN = "Orthodontiste, contrôle de l'appareil"


async def fill_agenda(world: World) -> dict[str, int]:
    """Two appointments in the patient's agenda (names one never finds in a refusal)."""
    soon = utcnow().replace(microsecond=0) + dt.timedelta(days=3)
    rows = {
        "convocation": Appointment(
            patient_id=world.patient.id,
            uid="irm-42@chu.example",
            origin="convocation",
            starts_at=soon,
            ends_at=soon + dt.timedelta(minutes=45),
            summary=CONVOCATION,
            location="CHU, bâtiment B; 2e étage",
            organizer="convocations@mss.localhost",
            organizer_name="CHU Neurologie",
            attendee=f"{INS}@patient.mss.localhost",
            reminders_sent=[],
        ),
        "own": Appointment(
            patient_id=world.patient.id,
            uid="own-1@patient.mss.localhost",
            origin="patient",
            response="accepted",
            starts_at=soon + dt.timedelta(days=1),
            ends_at=soon + dt.timedelta(days=1, hours=1),
            summary=OWN,
            reminders_sent=[],
        ),
    }
    async with world.db.write() as session:
        session.add_all(rows.values())
        await session.flush()
        return {name: row.id for name, row in rows.items()}


async def share(
    world: World, sharing: AgendaSharing, chosen: tuple[str, ...] = (), *, by: str = "patient"
) -> None:
    async with world.db.write() as session:
        patient = await session.get(Patient, world.patient.id)
        assert patient is not None
        await set_sharing(
            session,
            patient,
            sharing,
            chosen,
            actor=Actor(by, patient.ins, patient.display_name, "portal"),
            now=utcnow(),
        )


def new_appointment(**changes: Any) -> dict[str, Any]:
    start = (utcnow() + dt.timedelta(days=10)).replace(microsecond=0)
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "description": "Consultation de suivi",
        "start": start.isoformat(),
        "end": (start + dt.timedelta(minutes=30)).isoformat(),
        "comment": "Apporter le carnet de santé",
        "participant": [
            {
                "actor": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": INS}},
                "status": "needs-action",
            },
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "LOC",
                            }
                        ]
                    }
                ],
                "actor": {"display": "Cabinet, 3 rue des Lilas"},
                "status": "accepted",
            },
        ],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}
