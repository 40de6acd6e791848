"""HL7 v2 data types as XDS metadata writes them: CX, XCN, XON, CNE and DTM.

Parsers never raise on a malformed value: they keep the raw text and, where
the value cannot be trusted, a ``problem`` sentence that the caller turns
into a precise refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

_OID = re.compile(r"^[0-2](\.(0|[1-9]\d*))+$")
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")


@dataclass(frozen=True)
class Coded:
    """A code with its coding scheme (an OID or a scheme name) and display name."""

    code: str
    scheme: str | None = None
    display: str | None = None


@dataclass(frozen=True)
class Cx:
    """A CX identifier ``ID^^^&OID&ISO[^type]``; ``problem`` says why it cannot be used."""

    raw: str
    id: str | None
    authority_oid: str | None
    id_type: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Xcn:
    """An XCN person ``ID^Family^Given^^^^^^&OID&ISO^D^^^IDNPS``."""

    raw: str
    id: str | None
    family: str | None
    given: str | None
    authority_oid: str | None
    id_type: str | None


@dataclass(frozen=True)
class Xon:
    """An XON organisation ``Name^^^^^&OID&ISO^IDNST^^^ID``."""

    raw: str
    name: str | None
    id: str | None
    authority_oid: str | None
    id_type: str | None


def is_oid(value: str | None) -> bool:
    """True for a syntactically valid ISO OID (``1.2.250...``)."""
    return bool(value) and _OID.match(value or "") is not None


def _component(parts: list[str], index: int) -> str | None:
    value = parts[index] if index < len(parts) else ""
    return value or None


def _authority(hd: str | None) -> tuple[str | None, str | None]:
    """Split an HD ``namespace&OID&ISO``; return (OID, problem)."""
    if not hd:
        return None, "it has no assigning authority"
    sub = hd.split("&")
    if len(sub) != 3:
        return None, f"its assigning authority {hd!r} is not of the form &OID&ISO"
    oid, kind = sub[1], sub[2]
    if kind != "ISO":
        return None, f"its assigning authority type is {kind!r}, not ISO"
    if oid.lower() == "null" or not oid:
        return None, "its assigning authority OID is missing (literal 'null' or empty)"
    if not is_oid(oid):
        return None, f"its assigning authority {oid!r} is not an OID"
    return oid, None


def parse_cx(value: str | None) -> Cx:
    """Parse a patient identifier as XDS requires it (only components 1, 4 and 5)."""
    raw = (value or "").strip()
    if not raw:
        return Cx(raw=raw, id=None, authority_oid=None, problem="it is empty")
    parts = raw.split("^")
    ident = parts[0] or None
    if len(parts) < 4:
        misplaced = next((i for i, p in enumerate(parts[1:], 2) if "&" in p), None)
        where = (
            f"the assigning authority {parts[misplaced - 1]!r} sits in component "
            f"{misplaced} instead of 4"
            if misplaced
            else f"it has {len(parts)} component(s) and no assigning authority"
        )
        return Cx(
            raw=raw, id=ident, authority_oid=None, problem=f"{where} (expected ID^^^&OID&ISO)"
        )
    if parts[1] or parts[2]:
        return Cx(
            raw=raw,
            id=ident,
            authority_oid=None,
            problem="components 2 and 3 must be empty (expected ID^^^&OID&ISO)",
        )
    oid, problem = _authority(parts[3])
    id_type = _component(parts, 4)
    if ident is None or ident.lower() == "null":
        return Cx(
            raw=raw,
            id=None,
            authority_oid=oid,
            id_type=id_type,
            problem="its identifier is missing (literal 'null' or empty)",
        )
    return Cx(raw=raw, id=ident, authority_oid=oid, id_type=id_type, problem=problem)


def parse_xcn(value: str) -> Xcn:
    """Parse an XCN; a value without ``^`` is kept as raw text only (it may be a name)."""
    raw = value.strip()
    if "^" not in raw:
        return Xcn(raw=raw, id=None, family=None, given=None, authority_oid=None, id_type=None)
    parts = raw.split("^")
    oid, _ = _authority(_component(parts, 8))
    return Xcn(
        raw=raw,
        id=_component(parts, 0),
        family=_component(parts, 1),
        given=_component(parts, 2),
        authority_oid=oid,
        id_type=_component(parts, 12),
    )


def parse_xon(value: str) -> Xon:
    """Parse an XON; a bare name (no ``^``) is the organisation name."""
    raw = value.strip()
    parts = raw.split("^")
    oid, _ = _authority(_component(parts, 5))
    return Xon(
        raw=raw,
        name=_component(parts, 0),
        id=_component(parts, 9),
        authority_oid=oid,
        id_type=_component(parts, 6),
    )


def parse_cne(value: str) -> Coded:
    """Parse ``code^display^scheme`` (or ``code^display^^^&OID&ISO``); a bare value is the code."""
    raw = value.strip()
    if "^" not in raw:
        return Coded(code=raw)
    parts = raw.split("^")
    scheme = _component(parts, 2)
    if scheme is None:  # some senders put the system as an HD (&OID&ISO) further right
        hds = [p for p in parts[3:] if p.count("&") == 2]
        scheme = _authority(hds[0])[0] if hds else None
    return Coded(code=parts[0], scheme=scheme, display=_component(parts, 1))


def parse_dtm(value: str | None, default_tz: tzinfo = UTC) -> datetime | None:
    """HL7 DTM ``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]`` to an aware datetime.

    A value without an offset is read in ``default_tz`` (XDS metadata times
    are UTC by the ITI rules). Returns None for an invalid value.
    """
    match = _DTM.match((value or "").strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz = default_tz
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        if delta >= timedelta(hours=24):
            return None  # +2500 or +1299: no place has such an offset (found by the fuzzer)
        tz = timezone(sign * delta)
    try:
        return datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None


def dtm_has_offset(value: str | None) -> bool:
    """True when a DTM carries its own UTC offset."""
    match = _DTM.match((value or "").strip())
    return bool(match and match.group(8))
