"""Convocations end to end: signed mail over SMTP to the patient, the job, the agenda, the
reports."""

from __future__ import annotations

import datetime as dt
import email.policy
import uuid
from email.message import EmailMessage

from examples.hospital_convocations import build_convocation
from mss.agenda.itip import EventData, build_request
from mss.notify import NOTICES, read_outbox
from mss.smtp_gateway.dsn import as_email
from tests.agenda.conftest import (
    APP,
    INS,
    OTHER_INS,
    PATIENT,
    PATIENT_EMAIL,
    PATIENT_PHONE,
    AgendaHub,
)
from tests.xdm_factory import LOINC, DocSpec, XdmSpec, make_cda, make_xdm


async def test_request_creates_the_appointment_and_notifies_without_content(
    agenda_hub: AgendaHub,
) -> None:
    row = agenda_hub.row()
    await agenda_hub.convoke(row)
    [appointment] = await agenda_hub.appointments()
    assert (appointment.uid, appointment.sequence, appointment.status) == (
        "rdv-1@chu.example",
        0,
        "confirmed",
    )
    assert appointment.starts_at == row.start and appointment.ends_at == row.end
    assert appointment.tzid == "Europe/Paris" and appointment.location == "CHU, bâtiment B"
    assert appointment.summary == "Rendez-vous Cardiologie"
    assert (appointment.organizer, appointment.attendee) == (APP, PATIENT)
    assert appointment.response == "needs-action"
    [message] = await agenda_hub.stored(PATIENT)
    assert appointment.message_id_header == message.message_id_header
    sent = [
        r for r in read_outbox(agenda_hub.settings) if r["to"] in (PATIENT_EMAIL, PATIENT_PHONE)
    ]
    assert {r["channel"] for r in sent} == {"email", "sms"}
    for record in sent:
        assert NOTICES["appointment"].sentence in record["text"]
        assert "Cardiologie" not in record["text"] and "CHU" not in record["text"]
    reminders = await agenda_hub.jobs("agenda.reminder")
    assert sorted(j.payload["hours"] for j in reminders) == [2, 48]
    assert all(j.state == "pending" for j in reminders)
    assert [r.outcome for r in await agenda_hub.receipts()] == ["created"]


async def test_higher_sequence_updates_and_duplicates_change_nothing(agenda_hub: AgendaHub) -> None:
    first = agenda_hub.row()
    await agenda_hub.convoke(first)
    await agenda_hub.convoke(first)  # the same convocation again
    later = first.start + dt.timedelta(days=1, hours=2)
    await agenda_hub.convoke(
        agenda_hub.row(
            sequence=1, start=later, end=later + dt.timedelta(hours=1), location="CHU, bâtiment C"
        )
    )
    await agenda_hub.convoke(first)  # an older version arriving late
    [appointment] = await agenda_hub.appointments()
    assert (appointment.sequence, appointment.starts_at, appointment.location) == (
        1,
        later,
        "CHU, bâtiment C",
    )
    assert [r.outcome for r in await agenda_hub.receipts()] == [
        "created",
        "unchanged",
        "updated",
        "unchanged",
    ]
    assert len(await agenda_hub.stored(PATIENT)) == 4  # every message was delivered all the same
    reminders = {
        (j.payload["sequence"], j.payload["hours"])
        for j in await agenda_hub.jobs("agenda.reminder")
    }
    assert reminders == {(0, 48), (0, 2), (1, 48), (1, 2)}
    notices = [r["text"] for r in read_outbox(agenda_hub.settings) if r["to"] == PATIENT_PHONE]
    assert len(notices) == 4  # one per message delivered: no second notice for a convocation
    assert sum(NOTICES["appointment"].sentence in text for text in notices) == 2  # created, updated
    assert (
        sum(NOTICES["new_message"].sentence in text for text in notices) == 2
    )  # the unchanged ones


async def test_cancel_cancels_and_a_repeated_cancel_does_nothing(agenda_hub: AgendaHub) -> None:
    await agenda_hub.convoke(agenda_hub.row())
    await agenda_hub.convoke(agenda_hub.row(sequence=1, cancel=True))
    await agenda_hub.convoke(agenda_hub.row(sequence=1, cancel=True))
    [appointment] = await agenda_hub.appointments()
    assert (appointment.status, appointment.sequence) == ("cancelled", 1)
    assert [r.outcome for r in await agenda_hub.receipts()] == ["created", "cancelled", "unchanged"]
    [cancel_message] = [
        m for m in await agenda_hub.stored(PATIENT) if m.subject.startswith("Annulation")
    ][:1]
    assert b"METHOD:CANCEL" in bytes(cancel_message.raw)


def report_texts(raw: bytes) -> tuple[str, str]:
    """The human-readable part and the delivery-status part of a DSN, as a mail client shows
    them."""
    report = as_email(raw)
    assert report.get_content_type() == "multipart/report"
    human = next(p for p in report.walk() if p.get_content_type() == "text/plain").get_content()
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    return human, status.as_string()


def _signed_with_calendar(hub: AgendaHub, calendar: str) -> bytes:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = APP
    message["To"] = PATIENT
    message["Subject"] = "Convocation"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mss.localhost>"
    message.set_content("Bonjour,\n")
    message.add_alternative(calendar, subtype="calendar", params={"method": "REQUEST"})
    certs, key = hub.sender.signer()
    from mss.crypto import smime

    return smime.sign(message.as_bytes(policy=email.policy.SMTP), certs[0], key, chain=certs[1:])


async def test_broken_calendar_delivers_creates_nothing_and_reports_the_reason(
    agenda_hub: AgendaHub,
) -> None:
    start = dt.datetime(2030, 1, 7, 8, 0, tzinfo=dt.UTC)
    good = build_request(
        EventData(
            uid="x@chu",
            sequence=0,
            start=start,
            end=start + dt.timedelta(hours=1),
            summary="Rendez-vous",
            organizer=APP,
            attendee=PATIENT,
        ),
        start,
    )
    broken = good.replace(
        "DTEND;TZID=Europe/Paris:20300107T100000", "DTEND;TZID=Europe/Paris:20300107T080000"
    )
    assert await agenda_hub.send(_signed_with_calendar(agenda_hub, broken)) == {}
    await agenda_hub.drain()
    assert len(await agenda_hub.stored(PATIENT)) == 1
    assert await agenda_hub.appointments() == []
    [receipt] = await agenda_hub.receipts()
    assert receipt.outcome == "refused" and "ends before it starts" in receipt.reason
    [notice] = [r["text"] for r in read_outbox(agenda_hub.settings) if r["to"] == PATIENT_PHONE]
    assert NOTICES["new_message"].sentence in notice  # a message arrived, no appointment
    [dsn] = await agenda_hub.stored(APP)
    human, status = report_texts(bytes(dsn.raw))
    assert "Status: 5.6.0" in status and "Action: failed" in status
    assert (
        "Message remis, mais son calendrier n'a pas été pris en compte et aucun rendez-vous "
        "n'a été créé : "
        "le rendez-vous se termine avant de commencer (DTEND <= DTSTART) (ligne" in human
    )
    assert "ends before it starts (DTEND <= DTSTART)" in human


async def test_convocation_for_someone_else_is_refused(agenda_hub: AgendaHub) -> None:
    start = dt.datetime(2030, 1, 7, 8, 0, tzinfo=dt.UTC)
    calendar = build_request(
        EventData(
            uid="y@chu",
            sequence=0,
            start=start,
            end=start + dt.timedelta(hours=1),
            summary="Rendez-vous",
            organizer="autre@chu.example",
            attendee=PATIENT,
        ),
        start,
    )
    assert await agenda_hub.send(_signed_with_calendar(agenda_hub, calendar)) == {}
    await agenda_hub.drain()
    assert await agenda_hub.appointments() == []
    [receipt] = await agenda_hub.receipts()
    assert "ORGANIZER autre@chu.example is not the sender" in receipt.reason
    [dsn] = await agenda_hub.stored(APP)
    human, _status = report_texts(bytes(dsn.raw))
    assert (
        "ORGANIZER autre@chu.example n'est pas l'expéditeur <convocations@mss.localhost>" in human
    )


async def test_convocation_with_an_xdm_package(agenda_hub: AgendaHub) -> None:
    cda = make_cda(code="56446-8", display="Avis de rendez-vous", ins=INS)
    xdm = make_xdm(
        XdmSpec(
            documents=[
                DocSpec(content=cda, type_code=("56446-8", LOINC), title="Avis de rendez-vous")
            ]
        )
    )
    from examples.hospital_convocations import build_convocation

    raw, recipient = build_convocation(
        agenda_hub.row(uid="rdv-xdm@chu.example"), agenda_hub.sender, xdm=xdm
    )
    assert await agenda_hub.send(raw, [recipient]) == {}
    await agenda_hub.drain()
    [appointment] = await agenda_hub.appointments()
    assert appointment.uid == "rdv-xdm@chu.example"
    [message] = await agenda_hub.stored(PATIENT)
    assert b"IHE_XDM.ZIP" in bytes(message.raw)


async def test_a_batch_of_convocations_gives_what_one_by_one_gives(agenda_hub: AgendaHub) -> None:
    """Convocations delivered before the job runs go through in one batch, in queue order:
    each sees what the earlier ones of the batch created, moved or cancelled; the batch reads
    and writes with the same statements whatever its size."""
    from sqlalchemy import event

    first = agenda_hub.row()
    later = first.start + dt.timedelta(days=1)
    start = dt.datetime(2030, 1, 7, 8, 0, tzinfo=dt.UTC)
    good = build_request(
        EventData(
            uid="x@chu",
            sequence=0,
            start=start,
            end=start + dt.timedelta(hours=1),
            summary="Rendez-vous",
            organizer=APP,
            attendee=PATIENT,
        ),
        start,
    )
    broken = good.replace(
        "DTEND;TZID=Europe/Paris:20300107T100000", "DTEND;TZID=Europe/Paris:20300107T080000"
    )
    messages = [
        build_convocation(first, agenda_hub.sender),  # created
        build_convocation(first, agenda_hub.sender),  # the same again: unchanged
        build_convocation(
            agenda_hub.row(sequence=1, start=later, end=later + dt.timedelta(hours=1)),
            agenda_hub.sender,
        ),  # updated
        build_convocation(
            agenda_hub.row(ins=OTHER_INS, given_names="Paul"), agenda_hub.sender
        ),  # created
        build_convocation(agenda_hub.row(uid="rdv-2@chu.example"), agenda_hub.sender),  # created
        build_convocation(
            agenda_hub.row(uid="rdv-2@chu.example", sequence=1, cancel=True), agenda_hub.sender
        ),  # cancelled
        (_signed_with_calendar(agenda_hub, broken), PATIENT),  # refused
        build_convocation(first, agenda_hub.sender),  # an older version arriving late: unchanged
    ]
    for raw, recipient in messages:
        assert await agenda_hub.send(raw, [recipient]) == {}
    statements: list[str] = []

    def remember(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    engine = agenda_hub.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        assert await agenda_hub.runner.run_once() == len(messages)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert [r.outcome for r in await agenda_hub.receipts()] == [
        "created",
        "unchanged",
        "updated",
        "created",
        "created",
        "cancelled",
        "refused",
        "unchanged",
    ]
    assert len({r.processed_at for r in await agenda_hub.receipts()}) == 1  # one transaction
    moved, cancelled = await agenda_hub.appointments()
    assert (moved.uid, moved.sequence, moved.starts_at, moved.status) == (
        first.uid,
        1,
        later,
        "confirmed",
    )
    assert (cancelled.uid, cancelled.sequence, cancelled.status) == (
        "rdv-2@chu.example",
        1,
        "cancelled",
    )
    [other] = await agenda_hub.appointments(OTHER_INS)
    assert other.uid == first.uid and other.sequence == 0
    reminders = {
        (j.payload["appointment_id"], j.payload["sequence"], j.payload["hours"])
        for j in await agenda_hub.jobs("agenda.reminder")
    }
    assert reminders == {
        (moved.id, 0, 48),
        (moved.id, 0, 2),
        (moved.id, 1, 48),
        (moved.id, 1, 2),
        (other.id, 0, 48),
        (other.id, 0, 2),
        (cancelled.id, 0, 48),
        (cancelled.id, 0, 2),
    }
    agenda = [s for s in statements if "agenda_" in s]
    assert (
        sum(s.lstrip().upper().startswith("INSERT INTO AGENDA_APPOINTMENTS") for s in agenda) == 1
    )
    assert (
        sum(s.lstrip().upper().startswith("INSERT INTO AGENDA_CONVOCATIONS") for s in agenda) == 1
    )
    assert len(agenda) <= 5, (
        agenda
    )  # read the batch, read the appointments, insert, update, receipts
    await agenda_hub.drain()
    [dsn] = await agenda_hub.stored(APP)
    assert "Status: 5.6.0" in report_texts(bytes(dsn.raw))[1]
    notices = [r["text"] for r in read_outbox(agenda_hub.settings) if r["to"] == PATIENT_PHONE]
    assert (
        sum(NOTICES["appointment"].sentence in text for text in notices) == 4
    )  # created, updated, created, cancelled
    assert (
        sum(NOTICES["new_message"].sentence in text for text in notices) == 3
    )  # unchanged twice, refused
