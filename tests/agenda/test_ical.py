"""The iCalendar reader and writer: unfolding, escaping, time zones, iTIP checks with precise
reasons."""

from __future__ import annotations

import datetime as dt

import pytest

from mss.agenda.ical import CalendarError, escape_text, fold, parse_calendar, unescape_text
from mss.agenda.itip import (
    EventData,
    build_cancel,
    build_publish,
    build_reply,
    build_request,
    read_invitation,
)

STAMP = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 10, 8, 30, tzinfo=dt.UTC)  # 9:30 in Paris (CET)


def event(**changes: object) -> EventData:
    values: dict[str, object] = {
        "uid": "rdv-42@chu.example",
        "sequence": 0,
        "start": START,
        "end": START + dt.timedelta(minutes=45),
        "summary": "Consultation de cardiologie; bâtiment B, 2e étage",
        "location": "CHU, Hall 3\nPorte 12",
        "organizer": "convocations@mss.localhost",
        "organizer_name": "CHU Convocations",
        "attendee": "180017512345678@patient.mss.localhost",
        "attendee_name": "Marie Durand",
    }
    values.update(changes)
    return EventData(**values)  # type: ignore[arg-type]


def test_request_round_trip_keeps_every_field_and_paris_time() -> None:
    text = build_request(event(), STAMP)
    assert "DTSTART;TZID=Europe/Paris:20260310T093000\r\n" in text
    assert "BEGIN:VTIMEZONE" in text and "METHOD:REQUEST" in text
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    invitation = read_invitation(text.encode())
    assert invitation.method == "REQUEST" and invitation.uid == "rdv-42@chu.example"
    assert invitation.start == START and invitation.end == START + dt.timedelta(minutes=45)
    assert invitation.tzid == "Europe/Paris"
    assert invitation.summary == "Consultation de cardiologie; bâtiment B, 2e étage"
    assert invitation.location == "CHU, Hall 3\nPorte 12"
    assert invitation.organizer == "convocations@mss.localhost"
    assert invitation.organizer_name == "CHU Convocations"
    assert invitation.attendees == ("180017512345678@patient.mss.localhost",)


def test_summer_time_and_utc_and_duration() -> None:
    summer = dt.datetime(2026, 7, 1, 7, 0, tzinfo=dt.UTC)
    text = build_request(event(start=summer, end=summer + dt.timedelta(hours=1)), STAMP)
    assert "DTSTART;TZID=Europe/Paris:20260701T090000" in text
    assert read_invitation(text).start == summer
    utc = text.replace("DTSTART;TZID=Europe/Paris:20260701T090000", "DTSTART:20260701T070000Z")
    utc = utc.replace("DTEND;TZID=Europe/Paris:20260701T100000", "DURATION:PT1H30M")
    invitation = read_invitation(utc)
    assert invitation.start == summer and invitation.end == summer + dt.timedelta(minutes=90)


def test_folding_and_escaping() -> None:
    long = "x" * 200 + "é" * 50
    folded = fold("SUMMARY:" + long)
    assert all(len(line.encode()) <= 75 for line in folded.split("\r\n"))
    assert unescape_text(escape_text("a;b,c\\d\ne")) == "a;b,c\\d\ne"
    calendar = parse_calendar(
        "BEGIN:VCALENDAR\r\nPRODID:x\r\nVERSION:2.0\r\nX-LONG:ab\r\n c\r\n\td\r\nEND:VCALENDAR\r\n"
    )
    assert calendar.first("X-LONG").value == "abcd"  # type: ignore[union-attr]


def test_quoted_parameters_and_lf_only() -> None:
    calendar = parse_calendar(
        'BEGIN:VCALENDAR\nPRODID:x\nVERSION:2.0\nATTENDEE;CN="Durand, Marie";'
        'DELEGATED-FROM="mailto:a@x","mailto:b@x":mailto:m@x\nEND:VCALENDAR\n'
    )
    attendee = calendar.first("ATTENDEE")
    assert attendee is not None and attendee.param("CN") == "Durand, Marie"
    assert attendee.params["DELEGATED-FROM"] == ["mailto:a@x", "mailto:b@x"]


def test_reply_and_cancel_and_publish() -> None:
    reply = build_reply(event(sequence=2), "ACCEPTED", STAMP)
    assert "METHOD:REPLY" in reply and "PARTSTAT=ACCEPTED" in reply and "SEQUENCE:2" in reply
    cancel = read_invitation(build_cancel(event(sequence=3), STAMP))
    assert cancel.method == "CANCEL" and cancel.sequence == 3
    assert "METHOD:PUBLISH" in build_publish(event(), STAMP)
    with pytest.raises(ValueError):
        build_reply(event(), "TENTATIVE", STAMP)


BROKEN = [
    ("no VCALENDAR", "BEGIN:VEVENT\r\nEND:VEVENT\r\n", "does not start with BEGIN:VCALENDAR"),
    ("truncated", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "ends before END:VCALENDAR"),
    ("no colon", "BEGIN:VCALENDAR\r\nVERSION 2.0\r\nEND:VCALENDAR\r\n", "has no ':'"),
    ("bad END", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\n", "END:VTODO where END:VEVENT"),
    ("no PRODID", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "VCALENDAR has no PRODID"),
    ("not utf-8", b"BEGIN:VCALENDAR\r\nSUMMARY:\xe9\r\nEND:VCALENDAR\r\n", "not UTF-8"),
]


@pytest.mark.parametrize("name, data, reason", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_calendars_are_refused_with_the_reason(
    name: str, data: str | bytes, reason: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_calendar(data)
    assert reason in caught.value.reason
    assert caught.value.reason_fr


def _mutate(old: str, new: str) -> str:
    text = build_request(event(), STAMP)
    assert old in text
    return text.replace(old, new)


INVALID = [
    ("publish", "METHOD:REQUEST", "METHOD:PUBLISH", "METHOD:PUBLISH is not a convocation"),
    ("no uid", "UID:rdv-42@chu.example\r\n", "", "VEVENT has no UID"),
    ("floating", "DTSTART;TZID=Europe/Paris:", "DTSTART:", "neither TZID nor 'Z'"),
    ("unknown tz", "DTSTART;TZID=Europe/Paris", "DTSTART;TZID=Mars/Olympus", "unknown time zone"),
    (
        "all day",
        "DTSTART;TZID=Europe/Paris:20260310T093000",
        "DTSTART;VALUE=DATE:20260310",
        "date without a time",
    ),
    ("bad date", "20260310T093000", "20260231T093000", "not a real date"),
    (
        "end first",
        "DTEND;TZID=Europe/Paris:20260310T101500",
        "DTEND;TZID=Europe/Paris:20260310T090000",
        "ends before it starts",
    ),
    ("sequence", "SEQUENCE:0", "SEQUENCE:un", "SEQUENCE 'un' is not a whole number"),
    (
        "organizer",
        "ORGANIZER;CN=CHU Convocations:mailto:",
        "ORGANIZER:http://",
        "ORGANIZER is not a mailto",
    ),
    (
        "recurring",
        "STATUS:CONFIRMED",
        "STATUS:CONFIRMED\r\nRRULE:FREQ=WEEKLY",
        "recurring appointments",
    ),
    ("two uids", "SEQUENCE:0", "SEQUENCE:0\r\nUID:other", "VEVENT has UID 2 times"),
]


@pytest.mark.parametrize("name, old, new, reason", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_convocations_say_what_is_wrong(name: str, old: str, new: str, reason: str) -> None:
    with pytest.raises(CalendarError) as caught:
        read_invitation(_mutate(old, new))
    assert reason in caught.value.reason, caught.value.reason
