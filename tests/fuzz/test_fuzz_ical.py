"""iCalendar and iTIP convocations (built by mss.agenda.itip), then broken.

Property: parse_calendar and read_invitation return or raise CalendarError with a reason.
"""

from __future__ import annotations

from hypothesis import example, given

from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.targets import check, inputs, seeds

LONG_TZID = seeds("itip")[0].replace(
    b"DTSTART;TZID=Europe/Paris", b"DTSTART;TZID=Eur" + b"TZID=Europe/Paris" * 400
)


@fuzz_settings(100)
@given(inputs("ical"))
def test_calendar_is_read_or_refused(data: bytes) -> None:
    check("ical", data)


@fuzz_settings(100)
@given(inputs("itip"))
@example(LONG_TZID)  # RecursionError: ZoneInfo imported one package per "/" of the name
def test_invitation_is_read_or_refused(data: bytes) -> None:
    check("itip", data)
