"""iTIP (RFC 5546) for convocations: read a REQUEST or CANCEL, write REQUEST, CANCEL, REPLY,
PUBLISH.

A convocation is one VEVENT (no recurrence) with UID, SEQUENCE, DTSTART and
DTEND (or DURATION) in a named time zone, LOCATION, ORGANIZER and the
patient as ATTENDEE. ``read_invitation`` turns the calendar part into an
``Invitation`` or raises ``CalendarError`` saying what is missing or wrong.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from mss.agenda.ical import (
    PARIS_VTIMEZONE,
    CalendarError,
    Component,
    content_line,
    escape_text,
    format_local,
    format_utc,
    parse_calendar,
    parse_date_time,
    parse_duration,
    unescape_text,
)

PRODID = "-//MSS hub//Agenda santé//FR"
METHODS = ("REQUEST", "CANCEL")
PARTSTATS = ("ACCEPTED", "DECLINED")
MAX_UID = 255


@dataclass(frozen=True)
class Invitation:
    """One appointment as an organizer sent it (REQUEST) or withdrew it (CANCEL)."""

    method: str
    uid: str
    sequence: int
    start: dt.datetime | None
    end: dt.datetime | None
    tzid: str
    summary: str
    location: str
    description: str
    organizer: str
    organizer_name: str
    attendees: tuple[str, ...]


def mail_address(value: str) -> str:
    """The address of a CAL-ADDRESS ('mailto:x@y'), lower-cased; '' when it is not a mailto URI."""
    text = value.strip()
    if text[:7].lower() != "mailto:":
        return ""
    return text[7:].strip().lower()


def read_invitation(data: bytes | str) -> Invitation:
    """The REQUEST or CANCEL in a text/calendar part, or CalendarError with the reason."""
    calendar = parse_calendar(data)
    method_prop = calendar.single("METHOD", required=True)
    assert method_prop is not None
    method = method_prop.value.strip().upper()
    if method not in METHODS:
        raise CalendarError(
            f"METHOD:{method} is not a convocation (REQUEST or CANCEL expected)",
            f"METHOD:{method} n'est pas une convocation (REQUEST ou CANCEL attendu)",
            method_prop.line,
        )
    events = calendar.children("VEVENT")
    if len(events) != 1:
        raise CalendarError(
            f"a convocation holds exactly one VEVENT, this one has {len(events)}",
            f"une convocation contient exactement un VEVENT, celle-ci en a {len(events)}",
        )
    event = events[0]
    for name in ("RRULE", "RDATE", "RECURRENCE-ID"):
        recurring = event.first(name)
        if recurring is not None:
            raise CalendarError(
                f"{name}: recurring appointments are not accepted; send one convocation each",
                f"{name} : les rendez-vous récurrents ne sont pas acceptés ; envoyez une "
                "convocation par rendez-vous",
                recurring.line,
            )
    return _invitation(method, event)


def _invitation(method: str, event: Component) -> Invitation:
    uid_prop = event.single("UID", required=True)
    assert uid_prop is not None
    uid = uid_prop.value.strip()
    if not uid or len(uid) > MAX_UID:
        raise CalendarError(
            f"UID must have 1 to {MAX_UID} characters",
            f"UID doit avoir 1 à {MAX_UID} caractères",
            uid_prop.line,
        )
    sequence = _sequence(event)
    organizer_prop = event.single("ORGANIZER", required=True)
    assert organizer_prop is not None
    organizer = mail_address(organizer_prop.value)
    if not organizer:
        raise CalendarError(
            "ORGANIZER is not a mailto: address",
            "ORGANIZER n'est pas une adresse mailto:",
            organizer_prop.line,
        )
    attendees = tuple(a for a in (mail_address(p.value) for p in event.all("ATTENDEE")) if a)
    if method == "REQUEST" and not attendees:
        raise CalendarError(
            "the VEVENT has no ATTENDEE with a mailto: address",
            "le VEVENT n'a pas d'ATTENDEE avec une adresse mailto:",
            event.line,
        )
    start = end = None
    tzid = "Europe/Paris"
    start_prop = event.single("DTSTART", required=method == "REQUEST")
    if start_prop is not None:
        start, tzid = parse_date_time(start_prop)
        end = _end(event, start)
    return Invitation(
        method=method,
        uid=uid,
        sequence=sequence,
        start=start,
        end=end,
        tzid=tzid,
        summary=_text(event, "SUMMARY"),
        location=_text(event, "LOCATION"),
        description=_text(event, "DESCRIPTION"),
        organizer=organizer,
        organizer_name=organizer_prop.param("CN"),
        attendees=attendees,
    )


def _sequence(event: Component) -> int:
    prop = event.single("SEQUENCE")
    if prop is None:
        return 0
    text = prop.value.strip()
    if not text.isdigit() or len(text) > 9:
        raise CalendarError(
            f"SEQUENCE {prop.value!r} is not a whole number",
            f"SEQUENCE {prop.value!r} n'est pas un nombre entier",
            prop.line,
        )
    return int(text)


def _end(event: Component, start: dt.datetime) -> dt.datetime:
    end_prop, duration_prop = event.single("DTEND"), event.single("DURATION")
    if end_prop is not None and duration_prop is not None:
        raise CalendarError(
            "the VEVENT has both DTEND and DURATION",
            "le VEVENT a à la fois DTEND et DURATION",
            duration_prop.line,
        )
    if end_prop is not None:
        end, _ = parse_date_time(end_prop)
        line = end_prop.line
    elif duration_prop is not None:
        end, line = start + parse_duration(duration_prop), duration_prop.line
    else:
        raise CalendarError(
            "the VEVENT has neither DTEND nor DURATION",
            "le VEVENT n'a ni DTEND ni DURATION",
            event.line,
        )
    if end <= start:
        raise CalendarError(
            "the appointment ends before it starts (DTEND <= DTSTART)",
            "le rendez-vous se termine avant de commencer (DTEND <= DTSTART)",
            line,
        )
    return end


def _text(event: Component, name: str) -> str:
    prop = event.single(name)
    return unescape_text(prop.value).strip() if prop is not None else ""


# -- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventData:
    """What a VEVENT says, for the builders."""

    uid: str
    sequence: int
    start: dt.datetime
    end: dt.datetime
    summary: str
    location: str = ""
    description: str = ""
    organizer: str = ""
    organizer_name: str = ""
    attendee: str = ""
    attendee_name: str = ""
    tzid: str = "Europe/Paris"


def _calendar(method: str | None, body: Sequence[str], tzid: str) -> str:
    lines = ["BEGIN:VCALENDAR", content_line("PRODID", PRODID), "VERSION:2.0", "CALSCALE:GREGORIAN"]
    if method:
        lines.append(f"METHOD:{method}")
    if tzid == "Europe/Paris":
        lines += PARIS_VTIMEZONE
    return "\r\n".join([*lines, *body, "END:VCALENDAR"]) + "\r\n"


def _times(event: EventData) -> list[str]:
    params = {} if event.tzid == "UTC" else {"tzid": event.tzid}
    return [
        content_line("DTSTART", format_local(event.start, event.tzid), **params),
        content_line("DTEND", format_local(event.end, event.tzid), **params),
    ]


def _people(event: EventData, partstat: str = "NEEDS-ACTION", rsvp: bool = True) -> list[str]:
    lines = []
    if event.organizer:
        params = {"cn": event.organizer_name} if event.organizer_name else {}
        lines.append(content_line("ORGANIZER", f"mailto:{event.organizer}", **params))
    if event.attendee:
        params = {"cn": event.attendee_name} if event.attendee_name else {}
        params.update(role="REQ-PARTICIPANT", partstat=partstat)
        if rsvp:
            params["rsvp"] = "TRUE"
        lines.append(content_line("ATTENDEE", f"mailto:{event.attendee}", **params))
    return lines


def _event(
    event: EventData,
    stamp: dt.datetime,
    *,
    status: str,
    partstat: str = "NEEDS-ACTION",
    rsvp: bool = True,
) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        content_line("UID", event.uid),
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{format_utc(stamp)}",
        *_times(event),
        content_line("SUMMARY", escape_text(event.summary)),
    ]
    if event.location:
        lines.append(content_line("LOCATION", escape_text(event.location)))
    if event.description:
        lines.append(content_line("DESCRIPTION", escape_text(event.description)))
    lines += _people(event, partstat, rsvp)
    lines += [f"STATUS:{status}", "END:VEVENT"]
    return lines


def build_request(event: EventData, stamp: dt.datetime) -> str:
    """A METHOD:REQUEST calendar (a new or changed convocation)."""
    return _calendar("REQUEST", _event(event, stamp, status="CONFIRMED"), event.tzid)


def build_cancel(event: EventData, stamp: dt.datetime) -> str:
    """A METHOD:CANCEL calendar (the SEQUENCE must be higher than the last REQUEST's)."""
    return _calendar("CANCEL", _event(event, stamp, status="CANCELLED", rsvp=False), event.tzid)


def build_reply(event: EventData, partstat: str, stamp: dt.datetime) -> str:
    """A METHOD:REPLY from the attendee: ACCEPTED or DECLINED."""
    if partstat not in PARTSTATS:
        raise ValueError(f"PARTSTAT must be one of {PARTSTATS}, not {partstat!r}")
    body = [
        "BEGIN:VEVENT",
        content_line("UID", event.uid),
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{format_utc(stamp)}",
        *_times(event),
        *_people(event, partstat, rsvp=False),
        "END:VEVENT",
    ]
    return _calendar("REPLY", body, event.tzid)


def build_publish(event: EventData, stamp: dt.datetime, *, cancelled: bool = False) -> str:
    """A plain .ics file of one appointment, for the patient's own calendar application."""
    return _calendar(
        "PUBLISH",
        _event(event, stamp, status="CANCELLED" if cancelled else "CONFIRMED", rsvp=False),
        event.tzid,
    )


def build_feed(events: Sequence[tuple[EventData, bool]], stamp: dt.datetime, name: str) -> str:
    """A subscribable calendar (RFC 5545, METHOD:PUBLISH) of many events, each with whether
    it is cancelled; times in Europe/Paris (with its VTIMEZONE) or UTC for any other zone."""
    body: list[str] = []
    for event, cancelled in events:
        if event.tzid not in ("Europe/Paris", "UTC"):
            event = dataclasses.replace(event, tzid="UTC")
        status = "CANCELLED" if cancelled else "CONFIRMED"
        body += _event(event, stamp, status=status, rsvp=False)
    calendar = _calendar("PUBLISH", body, "Europe/Paris")
    # A calendar property goes before the components (RFC 5545 §3.6): beside CALSCALE.
    named = content_line("X-WR-CALNAME", escape_text(name))
    return calendar.replace("CALSCALE:GREGORIAN\r\n", f"CALSCALE:GREGORIAN\r\n{named}\r\n", 1)
