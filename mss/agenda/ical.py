"""A small, strict iCalendar (RFC 5545) reader and writer.

Reading unfolds lines (section 3.1), splits each content line into name,
parameters and value (quoted parameter values, several values per
parameter), and nests BEGIN/END components. Anything that does not follow
the grammar raises ``CalendarError`` with the line number and a sentence in
English and in French, so a sender can be told exactly what was wrong.
Writing escapes TEXT values (section 3.3.11) and folds lines at 75 octets.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_CALENDAR_BYTES = 256 * 1024
MAX_LINES = 5000
MAX_DEPTH = 4

_NAME = re.compile(r"[A-Za-z0-9-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)")
_ZONE_NAME = re.compile(
    r"[A-Za-z0-9_+-]{1,30}(?:/[A-Za-z0-9_+-]{1,30}){0,2}"
)  # IANA: Area/Location
_DURATION = re.compile(r"([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


class CalendarError(ValueError):
    """A calendar that cannot be used, with the reason in English and French."""

    def __init__(self, reason: str, reason_fr: str, line: int | None = None) -> None:
        where, where_fr = (f" (line {line})", f" (ligne {line})") if line else ("", "")
        super().__init__(reason + where)
        self.reason = reason + where
        self.reason_fr = reason_fr + where_fr


@dataclass(frozen=True)
class Property:
    """One content line: NAME;PARAM=value:VALUE (the value as written, still escaped)."""

    name: str
    value: str
    params: dict[str, list[str]] = field(default_factory=dict)
    line: int = 0

    def param(self, name: str, default: str = "") -> str:
        values = self.params.get(name.upper())
        return values[0] if values else default


@dataclass
class Component:
    """A BEGIN:X ... END:X block with its properties and sub-components."""

    name: str
    properties: list[Property] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    line: int = 0

    def all(self, name: str) -> list[Property]:
        return [p for p in self.properties if p.name == name.upper()]

    def first(self, name: str) -> Property | None:
        found = self.all(name)
        return found[0] if found else None

    def single(self, name: str, *, required: bool = False) -> Property | None:
        """The property that may appear at most once (and must, when ``required``)."""
        found = self.all(name)
        if len(found) > 1:
            raise CalendarError(
                f"{self.name} has {name} {len(found)} times; it may appear once",
                f"{self.name} contient {len(found)} fois {name} ; une seule est permise",
                found[1].line,
            )
        if required and not found:
            raise CalendarError(
                f"{self.name} has no {name}", f"{self.name} n'a pas de {name}", self.line
            )
        return found[0] if found else None

    def children(self, name: str) -> list[Component]:
        return [c for c in self.components if c.name == name.upper()]


# -- reading -------------------------------------------------------------------------------


def unfold(text: str) -> Iterator[tuple[int, str]]:
    """Content lines with their first physical line number (CRLF or LF; a leading space
    continues)."""
    current: str | None = None
    start = 0
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line[:1] in (" ", "\t"):
            if current is None:
                raise CalendarError(
                    "a continuation line comes before any property",
                    "une ligne de continuation précède toute propriété",
                    number,
                )
            current += line[1:]
            continue
        if current is not None:
            yield start, current
        current, start = (line, number) if line else (None, number)
    if current is not None:
        yield start, current


def parse_line(line: str, number: int = 0) -> Property:
    """Split one unfolded content line (RFC 5545 section 3.1) into a Property."""
    match = _NAME.match(line)
    if match is None:
        raise CalendarError(
            f"cannot read the property name in {line[:40]!r}",
            f"nom de propriété illisible dans {line[:40]!r}",
            number,
        )
    name, pos = match.group().upper(), match.end()
    params: dict[str, list[str]] = {}
    while pos < len(line) and line[pos] == ";":
        found = _NAME.match(line, pos + 1)
        if found is None or found.end() >= len(line) or line[found.end()] != "=":
            raise CalendarError(
                f"malformed parameter in {name}", f"paramètre mal formé dans {name}", number
            )
        key, pos = found.group().upper(), found.end() + 1
        values: list[str] = []
        while True:
            if pos < len(line) and line[pos] == '"':
                end = line.find('"', pos + 1)
                if end < 0:
                    raise CalendarError(
                        f"unterminated quoted parameter {key} in {name}",
                        f"paramètre {key} entre guillemets non terminé dans {name}",
                        number,
                    )
                values.append(line[pos + 1 : end])
                pos = end + 1
            else:
                end = pos
                while end < len(line) and line[end] not in ';:,"':
                    end += 1
                values.append(line[pos:end])
                pos = end
            if pos < len(line) and line[pos] == ",":
                pos += 1
                continue
            break
        params[key] = values
    if pos >= len(line) or line[pos] != ":":
        raise CalendarError(
            f"{name} has no ':' before its value",
            f"{name} n'a pas de « : » avant sa valeur",
            number,
        )
    value = line[pos + 1 :]
    if _CONTROL.search(value):
        raise CalendarError(
            f"{name} contains a control character",
            f"{name} contient un caractère de contrôle",
            number,
        )
    return Property(name, value, params, number)


def parse_calendar(data: bytes | str) -> Component:
    """The VCALENDAR object of an iCalendar stream (exactly one), strictly checked."""
    if isinstance(data, bytes):
        if len(data) > MAX_CALENDAR_BYTES:
            raise CalendarError(
                f"the calendar is larger than {MAX_CALENDAR_BYTES} bytes",
                f"le calendrier dépasse {MAX_CALENDAR_BYTES} octets",
            )
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CalendarError(
                "the calendar is not UTF-8 text", "le calendrier n'est pas du texte UTF-8"
            ) from None
    data = data.removeprefix("\ufeff")
    stack: list[Component] = []
    root: Component | None = None
    for count, (number, line) in enumerate(unfold(data), start=1):
        if count > MAX_LINES:
            raise CalendarError(
                f"the calendar has more than {MAX_LINES} lines",
                f"le calendrier a plus de {MAX_LINES} lignes",
            )
        prop = parse_line(line, number)
        if prop.name == "BEGIN":
            if root is not None:
                raise CalendarError(
                    "content after END:VCALENDAR", "contenu après END:VCALENDAR", number
                )
            component = Component(prop.value.upper(), line=number)
            if not stack and component.name != "VCALENDAR":
                raise CalendarError(
                    "the calendar does not start with BEGIN:VCALENDAR",
                    "le calendrier ne commence pas par BEGIN:VCALENDAR",
                    number,
                )
            if len(stack) >= MAX_DEPTH:
                raise CalendarError(
                    "components are nested too deeply", "composants trop imbriqués", number
                )
            if stack:
                stack[-1].components.append(component)
            stack.append(component)
        elif prop.name == "END":
            if not stack or stack[-1].name != prop.value.upper():
                expected = stack[-1].name if stack else "nothing"
                raise CalendarError(
                    f"END:{prop.value} where END:{expected} was expected",
                    f"END:{prop.value} au lieu de END:{expected}",
                    number,
                )
            done = stack.pop()
            if not stack:
                root = done
        elif not stack or root is not None:
            raise CalendarError(
                f"{prop.name} is outside BEGIN:VCALENDAR ... END:VCALENDAR",
                f"{prop.name} est en dehors de BEGIN:VCALENDAR ... END:VCALENDAR",
                number,
            )
        else:
            stack[-1].properties.append(prop)
    if stack or root is None:
        raise CalendarError(
            "the calendar ends before END:VCALENDAR", "le calendrier se termine avant END:VCALENDAR"
        )
    version = root.single("VERSION", required=True)
    if version is not None and version.value.strip() != "2.0":
        raise CalendarError(
            f"VERSION is {version.value!r}, not 2.0",
            f"VERSION vaut {version.value!r}, pas 2.0",
            version.line,
        )
    root.single("PRODID", required=True)
    return root


def unescape_text(value: str) -> str:
    """A TEXT value as the person wrote it (\\n, \\, \\; \\\\ decoded)."""
    out, chars = [], iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append({"n": "\n", "N": "\n"}.get(following, following))
    return "".join(out)


def parse_date_time(prop: Property) -> tuple[dt.datetime, str]:
    """An aware UTC datetime and the time zone it was given in ('UTC' for a Z time).

    A DATE (all-day) value or a floating time (neither TZID nor Z) is refused:
    an appointment needs an unambiguous moment.
    """
    if prop.param("VALUE", "DATE-TIME").upper() != "DATE-TIME":
        raise CalendarError(
            f"{prop.name} is a date without a time; an appointment needs a time",
            f"{prop.name} est une date sans heure ; un rendez-vous a besoin d'une heure",
            prop.line,
        )
    match = _DATE_TIME.fullmatch(prop.value.strip())
    if match is None:
        raise CalendarError(
            f"{prop.name} {prop.value!r} is not a date-time (YYYYMMDDTHHMMSS)",
            f"{prop.name} {prop.value!r} n'est pas une date-heure (AAAAMMJJTHHMMSS)",
            prop.line,
        )
    year, month, day, hour, minute, second, zulu = match.groups()
    tzid = prop.param("TZID")
    if zulu and tzid:
        raise CalendarError(
            f"{prop.name} has both TZID and a UTC 'Z'",
            f"{prop.name} a à la fois TZID et « Z »",
            prop.line,
        )
    if not zulu and not tzid:
        raise CalendarError(
            f"{prop.name} has neither TZID nor 'Z': the time is ambiguous",
            f"{prop.name} n'a ni TZID ni « Z » : l'heure est ambiguë",
            prop.line,
        )
    zone = dt.UTC if zulu else time_zone(tzid, prop.line)
    try:
        local = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:
        raise CalendarError(
            f"{prop.name} {prop.value!r} is not a real date",
            f"{prop.name} {prop.value!r} n'est pas une date réelle",
            prop.line,
        ) from None
    return local.astimezone(dt.UTC), "UTC" if zulu else tzid


def time_zone(tzid: str, line: int = 0) -> ZoneInfo:
    """The IANA zone named by a TZID (a VTIMEZONE's rules are not needed for those names)."""
    name = tzid.strip().lstrip("/")
    try:
        if not _ZONE_NAME.fullmatch(name):
            # ZoneInfo imports a package per "/" and "." of the name: a long one recursed
            # past Python's limit (tests/fuzz/test_fuzz_ical.py)
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(
            f"unknown time zone TZID={tzid!r}; use an IANA name such as Europe/Paris",
            f"fuseau horaire inconnu TZID={tzid!r} ; utilisez un nom IANA comme Europe/Paris",
            line,
        ) from None


def parse_duration(prop: Property) -> dt.timedelta:
    match = _DURATION.fullmatch(prop.value.strip())
    if match is None or prop.value.strip() in ("P", "PT", "-P", "+P"):
        raise CalendarError(
            f"DURATION {prop.value!r} is not a duration",
            f"DURATION {prop.value!r} n'est pas une durée",
            prop.line,
        )
    sign, weeks, days, hours, minutes, seconds = match.groups()
    delta = dt.timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -delta if sign == "-" else delta


# -- writing -------------------------------------------------------------------------------


def escape_text(value: str) -> str:
    """A TEXT value escaped for a content line (section 3.3.11)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\n", "\\n")
    )


def quote_param(value: str) -> str:
    """A parameter value, quoted when it holds ; : or , (quotes themselves are dropped)."""
    value = value.replace('"', "")
    return f'"{value}"' if any(c in value for c in ";:,") else value


def fold(line: str) -> str:
    """Fold a content line into chunks of at most 75 octets, never inside a UTF-8 sequence."""
    chunks, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        if size + width > 75:
            chunks.append(current)
            current, size = " ", 1
        current += char
        size += width
    chunks.append(current)
    return "\r\n".join(chunks)


def content_line(name: str, value: str, **params: str) -> str:
    """One folded content line; parameter names use '_' for '-' (``PARTSTAT``, ``TZID``...)."""
    head = name + "".join(
        f";{k.replace('_', '-').upper()}={quote_param(v)}" for k, v in params.items()
    )
    return fold(f"{head}:{value}")


def format_local(moment: dt.datetime, tzid: str) -> str:
    """A DATE-TIME in ``tzid`` (local form) or in UTC with Z when ``tzid`` is 'UTC'."""
    if tzid == "UTC":
        return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return moment.astimezone(time_zone(tzid)).strftime("%Y%m%dT%H%M%S")


def format_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


PARIS_VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)
