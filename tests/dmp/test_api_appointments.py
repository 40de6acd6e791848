"""The shared agenda through the document API over TLS: FHIR Appointment search, read and
create, and the iCalendar feed; every refusal precise, audited, and leaking nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from mss.agenda.ical import parse_calendar, parse_date_time, unescape_text
from mss.agenda.models import Appointment
from mss.agenda.store import agenda_of
from mss.audit import AuditEvent
from mss.db import utcnow
from mss.jobs import Job
from mss.policy.agenda import AgendaSharing
from portal.history import read_history
from tests.dmp.agenda_world import (
    AGENDA_SEARCH,
    CONVOCATION,
    FEED,
    OWN,
    fill_agenda,
    new_appointment,
    share,
)
from tests.dmp.conftest import PASSWORD, Api
from tests.dmp.matrix import ID_NATS
from tests.dmp.test_api_matrix import outcome
from tests.xdm_factory import INS


async def test_shared_with_nobody_by_default(api: Api) -> None:
    await fill_agenda(api.world)
    for path in (AGENDA_SEARCH, FEED):
        status, body, _ = await api.call("GET", path, role="authorised")
        assert status == 403 and "does not share their agenda" in outcome(body)
        assert CONVOCATION.encode() not in body
    status, body, _ = await api.call(
        "POST", "/fhir/Appointment", role="treating", json=new_appointment()
    )
    assert status == 403 and "ne partage pas son agenda" in outcome(body)
    async with api.world.db.read() as session:
        refused = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "agenda.shared_access_refused")
            )
        ).all()
    assert [(e.detail["attempted"], e.detail["refusal"]) for e in refused] == [
        ("read", "agenda_not_shared"),
        ("read", "agenda_not_shared"),
        ("write", "agenda_not_shared"),
    ]


async def test_search_and_read_as_fhir_appointment(api: Api) -> None:
    ids = await fill_agenda(api.world)
    await share(api.world, AgendaSharing.AUTHORISED)
    status, body, headers = await api.call("GET", AGENDA_SEARCH, role="authorised")
    assert status == 200 and headers["Content-Type"].startswith("application/fhir+json")
    bundle = json.loads(body)
    Bundle.model_validate(bundle)
    assert bundle["total"] == 2
    resources = [e["resource"] for e in bundle["entry"]]
    for resource in resources:
        FhirAppointment.model_validate(resource)
    assert [r["description"] for r in resources] == [CONVOCATION, OWN]
    assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/Appointment/{ids['convocation']}")
    convocation = resources[0]
    assert convocation["meta"]["tag"][0]["code"] == "convocation"
    assert convocation["participant"][0]["actor"]["identifier"]["value"] == INS
    assert {p["actor"]["display"] for p in convocation["participant"][1:]} == {
        "CHU Neurologie",
        "CHU, bâtiment B; 2e étage",
    }

    status, body, _ = await api.call(
        "GET", f"/fhir/Appointment/{ids['own']}", basic=f"treating@mss.localhost:{PASSWORD}"
    )
    assert status == 200
    one = FhirAppointment.model_validate(json.loads(body))
    assert one.description == OWN and one.participant[0].status == "accepted"


async def test_a_closed_agenda_answers_by_id_like_an_absent_appointment(api: Api) -> None:
    ids = await fill_agenda(api.world)
    await share(api.world, AgendaSharing.CHOSEN, (ID_NATS["treating"],))
    absent_status, absent, _ = await api.call("GET", "/fhir/Appointment/999999", role="authorised")
    for role in ("authorised", "unauthorised", "blocked"):
        status, body, _ = await api.call("GET", f"/fhir/Appointment/{ids['own']}", role=role)
        assert (
            (status, outcome(body))
            == (absent_status, outcome(absent))
            == (
                404,
                outcome(absent),
            )
        )
        assert OWN.encode() not in body
    status, _, _ = await api.call("GET", "/fhir/Appointment/12ab", role="treating")
    assert status == 404


async def test_create_marks_the_author_and_shows_in_the_patients_agenda(api: Api) -> None:
    await share(api.world, AgendaSharing.AUTHORISED)
    status, body, headers = await api.call(
        "POST", "/fhir/Appointment", role="authorised", json=new_appointment()
    )
    assert status == 201, body
    created = json.loads(body)
    FhirAppointment.model_validate(created)
    assert headers["Location"].endswith(f"/fhir/Appointment/{created['id']}")
    author = [
        p
        for p in created["participant"]
        if p.get("type", [{}])[0].get("coding", [{}])[0].get("code") == "AUT"
    ]
    assert author[0]["actor"]["identifier"]["value"] == ID_NATS["authorised"]
    assert created["meta"]["tag"][0]["code"] == "professional"
    async with api.world.db.read() as session:
        view = await agenda_of(session, api.world.patient.id, utcnow())
        history = await read_history(session, api.world.patient.id)
        notices = (await session.scalars(select(Job).where(Job.kind == "notify.patient"))).all()
    # The patient is told of the change in the agenda, with nothing of what it is.
    assert {j.payload["kind"] for j in notices} == {"appointment"}
    assert not any("Consultation" in str(j.payload) for j in notices)
    [entry] = view.upcoming
    assert (entry.origin, entry.author_id_nat, entry.author_name) == (
        "professional",
        ID_NATS["authorised"],
        "Dr AUTHORISED",
    )
    assert (entry.summary, entry.location, entry.description) == (
        "Consultation de suivi",
        "Cabinet, 3 rue des Lilas",
        "Apporter le carnet de santé",
    )
    assert entry.organizer == "authorised@mss.localhost"
    assert history[0].what == "Rendez-vous ajouté à l'agenda par un professionnel"
    assert "AUTHORISED" in history[0].who


START = "2030-01-10T09:00:00+01:00"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "JSON"),
        ({"resourceType": "Patient"}, 400, "must be a FHIR Appointment"),
        (new_appointment(status="proposed"), 422, "status must be booked"),
        (new_appointment(start=None), 422, "Appointment.start is required"),
        (new_appointment(start="2030-01-10"), 422, "needs a time and its offset"),
        (new_appointment(start="2030-01-10T09:00:00"), 422, "needs a time and its offset"),
        (new_appointment(end="demain"), 422, "is not a FHIR instant"),
        (new_appointment(description="  "), 422, "Appointment.description is required"),
        (new_appointment(description="x" * 300), 422, "longer than 255"),
        (new_appointment(minutesDuration=30), 422, "minutesDuration are not accepted"),
        (new_appointment(participant=[]), 422, "must name the patient by INS"),
        (
            new_appointment(
                participant=[{"actor": {"identifier": {"system": "urn:oid:1.2.3", "value": "1"}}}]
            ),
            422,
            "may name only the patient",
        ),
        (
            new_appointment(start=START, end="2030-01-10T08:00:00+01:00"),
            422,
            "must end after it starts",
        ),
        (
            new_appointment(start="2020-01-10T08:00:00Z", end="2020-01-10T09:00:00Z"),
            422,
            "already over",
        ),
        (
            new_appointment(start=START, end="2030-01-12T09:00:00+01:00"),
            422,
            "at most 24 hours",
        ),
    ],
)
async def test_create_refusals_are_precise_and_write_nothing(
    api: Api, body: Any, status: int, words: str
) -> None:
    await share(api.world, AgendaSharing.AUTHORISED)
    if isinstance(body, bytes):
        got, answer, _ = await api.call("POST", "/fhir/Appointment", role="authorised", data=body)
    else:
        got, answer, _ = await api.call("POST", "/fhir/Appointment", role="authorised", json=body)
    assert got == status, answer
    assert words in outcome(answer)
    async with api.world.db.read() as session:
        assert (await session.scalars(select(Appointment))).all() == []


async def test_create_for_an_unknown_patient(api: Api) -> None:
    body = new_appointment()
    body["participant"][0]["actor"]["identifier"]["value"] = "299999999999999"
    status, answer, _ = await api.call("POST", "/fhir/Appointment", role="authorised", json=body)
    assert status == 404 and "no agenda" in outcome(answer)


async def test_the_icalendar_feed_parses_back(api: Api) -> None:
    ids = await fill_agenda(api.world)
    await share(api.world, AgendaSharing.CHOSEN, (ID_NATS["authorised"],))
    status, body, headers = await api.call(
        "GET", FEED, basic=f"authorised@mss.localhost:{PASSWORD}"
    )
    assert status == 200
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    calendar = parse_calendar(body)
    assert calendar.name == "VCALENDAR"
    assert calendar.first("METHOD").value == "PUBLISH"
    assert unescape_text(calendar.first("X-WR-CALNAME").value) == "Agenda de Ruth NESSI"
    events = [c for c in calendar.components if c.name == "VEVENT"]
    assert [unescape_text(e.first("SUMMARY").value) for e in events] == [CONVOCATION, OWN]
    assert unescape_text(events[0].first("LOCATION").value) == "CHU, bâtiment B; 2e étage"
    assert events[0].first("UID").value == "irm-42@chu.example"
    async with api.world.db.read() as session:
        stored = await session.get(Appointment, ids["convocation"])
    assert stored is not None
    start, tzid = parse_date_time(events[0].first("DTSTART"))
    assert (start, tzid) == (stored.starts_at, "Europe/Paris")
    # Someone not chosen gets nothing of it.
    status, body, _ = await api.call("GET", FEED, role="treating")
    assert status == 403 and b"BEGIN:VCALENDAR" not in body and CONVOCATION.encode() not in body
    status, body, _ = await api.call("GET", FEED)
    assert status == 401


async def test_reads_are_on_the_patients_history_in_french(api: Api) -> None:
    await fill_agenda(api.world)
    await share(api.world, AgendaSharing.AUTHORISED)
    await api.call("GET", AGENDA_SEARCH, role="authorised")
    await api.call("GET", FEED, role="treating")
    await api.call("GET", FEED, role="unauthorised")
    async with api.world.db.read() as session:
        history = await read_history(session, api.world.patient.id)
    whats = [(line.what, line.who) for line in history[:4]]
    assert whats[0][0] == "Accès à l'agenda refusé à un professionnel"
    assert "UNAUTHORISED" in whats[0][1]
    assert whats[1][0] == "Agenda consulté par un professionnel" and "TREATING" in whats[1][1]
    assert whats[2][0] == "Agenda consulté par un professionnel" and "AUTHORISED" in whats[2][1]
    assert whats[3][0] == "Choix des professionnels qui voient l'agenda modifié"


async def test_search_parameters(api: Api) -> None:
    await share(api.world, AgendaSharing.AUTHORISED)
    status, body, _ = await api.call("GET", AGENDA_SEARCH + "&date=ge2027", role="authorised")
    assert status == 400 and "date" in outcome(body)
    status, body, _ = await api.call("GET", "/fhir/Appointment", role="authorised")
    assert status == 400 and "patient.identifier is required" in outcome(body)
