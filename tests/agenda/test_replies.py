"""Accept and decline in the portal: an iTIP REPLY through the gateway, read by the hospital over
IMAP."""

from __future__ import annotations

import asyncio
import email.policy
from email.message import EmailMessage
from email.parser import BytesParser

from mss.agenda.ical import parse_calendar
from mss.agenda.itip import mail_address
from tests.agenda.conftest import (
    APP,
    INS,
    PASSWORD,
    PATIENT,
    AgendaHub,
    PortalHub,
    read_inbox_over_imap,
)


def _reply_calendar(raw: bytes) -> tuple[EmailMessage, str]:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REPLY"
    return message, part.get_content()


async def _answer(portal: PortalHub, agenda_hub: AgendaHub, choice: str) -> int:
    await portal.login(INS, PASSWORD)
    [appointment] = await agenda_hub.appointments()
    path = f"/agenda/rendez-vous/{appointment.id}"
    response = await portal.post(f"{path}/reponse", {"reponse": choice}, csrf_from=path)
    assert response.status == 303, await response.text()
    return appointment.id


async def test_accept_sends_an_itip_reply_the_hospital_reads_over_imap(
    agenda_hub: AgendaHub, portal: PortalHub, imap_port: int
) -> None:
    await agenda_hub.convoke(agenda_hub.row(sequence=2))
    [convocation] = await agenda_hub.stored(PATIENT)
    await _answer(portal, agenda_hub, "accepter")
    [appointment] = await agenda_hub.appointments()
    assert appointment.response == "accepted" and appointment.answered_at is not None
    messages = await asyncio.to_thread(read_inbox_over_imap, agenda_hub, imap_port)
    assert len(messages) == 1
    message, calendar_text = _reply_calendar(messages[0])
    assert message["From"].addresses[0].addr_spec == PATIENT
    assert message["To"].addresses[0].addr_spec == APP
    assert message["In-Reply-To"] == convocation.message_id_header
    assert message["Subject"] == "Accepté : Rendez-vous Cardiologie"
    calendar = parse_calendar(calendar_text)
    assert calendar.first("METHOD").value == "REPLY"  # type: ignore[union-attr]
    [event] = calendar.children("VEVENT")
    assert event.first("UID").value == "rdv-1@chu.example"  # type: ignore[union-attr]
    assert event.first("SEQUENCE").value == "2"  # type: ignore[union-attr]
    attendee = event.first("ATTENDEE")
    assert attendee is not None and mail_address(attendee.value) == PATIENT
    assert attendee.param("PARTSTAT") == "ACCEPTED"
    assert mail_address(event.first("ORGANIZER").value) == APP  # type: ignore[union-attr]
    assert len(await agenda_hub.stored(PATIENT, "Sent")) == 1  # the patient keeps a copy


async def test_decline_sends_declined_and_stops_reminders(
    agenda_hub: AgendaHub, portal: PortalHub, imap_port: int
) -> None:
    await agenda_hub.convoke(agenda_hub.row())
    await _answer(portal, agenda_hub, "refuser")
    [appointment] = await agenda_hub.appointments()
    assert appointment.response == "declined"
    [raw] = await asyncio.to_thread(read_inbox_over_imap, agenda_hub, imap_port)
    _message, calendar_text = _reply_calendar(raw)
    assert "PARTSTAT=DECLINED" in calendar_text.replace("\r\n ", "")
    from mss.agenda.reminders import send_reminder
    from mss.jobs import JobContext

    for job in await agenda_hub.jobs("agenda.reminder"):
        await send_reminder(
            JobContext(agenda_hub.db, job.id, 1, agenda_hub.services), dict(job.payload)
        )
    async with agenda_hub.db.read() as session:
        from mss.agenda.models import Appointment

        row = await session.get(Appointment, appointment.id)
        assert row is not None and row.reminders_sent == []


async def test_reply_to_a_cancelled_appointment_is_refused_with_a_sentence(
    agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await agenda_hub.convoke(agenda_hub.row())
    await agenda_hub.convoke(agenda_hub.row(sequence=1, cancel=True))
    await portal.login(INS, PASSWORD)
    [appointment] = await agenda_hub.appointments()
    path = f"/agenda/rendez-vous/{appointment.id}"
    _response, html = await portal.page(path)
    assert appointment.status == "cancelled", appointment.status
    assert "J'accepte ce rendez-vous" not in html and "Annulé par l'organisateur" in html
    response = await portal.post(f"{path}/reponse", {"reponse": "accepter"}, csrf_from=path)
    assert response.status == 409
    assert "Ce rendez-vous a été annulé par l&#39;organisateur" in await response.text()
    assert await agenda_hub.stored(APP) == []


async def test_the_ics_download_and_another_patients_entry(
    agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await agenda_hub.convoke(agenda_hub.row())
    await portal.login(INS, PASSWORD)
    [appointment] = await agenda_hub.appointments()
    response = await portal.client.get(f"/agenda/rendez-vous/{appointment.id}/ics")
    assert response.status == 200 and response.content_type == "text/calendar"
    assert 'filename="rendez-vous.ics"' in response.headers["Content-Disposition"]
    calendar = parse_calendar(await response.read())
    assert calendar.first("METHOD").value == "PUBLISH"  # type: ignore[union-attr]
    assert calendar.children("VEVENT")[0].first("UID").value == "rdv-1@chu.example"  # type: ignore[union-attr]
    response = await portal.client.get(
        f"/agenda/rendez-vous/{appointment.id + 1000}", allow_redirects=False
    )
    assert response.status == 404
