"""The RFC 3461 (DSN) parameters of MAIL (RET, ENVID) and RCPT (NOTIFY, ORCPT).

aiosmtpd refuses every RCPT parameter (555) and upper-cases the ones it
passes on, so the hub takes these off the command line first, with their
case, and hands aiosmtpd the rest. What the hub does with them
(docs/standards.md, RFC 3461 row): ORCPT is kept per recipient and becomes
the MDN's ``Original-Recipient`` (RFC 8098 §3.2.3); NOTIFY, RET and ENVID
are checked for syntax and otherwise not acted on yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAIL_PARAMETERS = frozenset({"RET", "ENVID"})
RCPT_PARAMETERS = frozenset({"NOTIFY", "ORCPT"})
_XTEXT = re.compile(r"^(?:[!-*,-<>-~]|\+[0-9A-F]{2})+$")  # RFC 3461 §4: 33-126 but + and =
_ADDR_TYPE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})
_MAX_ORCPT = 500  # RFC 3461 §4.2: the ORCPT parameter is at most 500 characters
_MAX_ENVID = 100  # RFC 3461 §4.4


@dataclass(frozen=True)
class DsnParameters:
    """The DSN parameters of one MAIL or RCPT command, decoded."""

    notify: tuple[str, ...] = ()
    original_recipient: str | None = None  # "rfc822;jean@example.org", xtext decoded
    ret: str | None = None
    envid: str | None = None


class MalformedParameter(ValueError):
    """A DSN parameter that does not follow RFC 3461 (a 501 reply)."""


def decode_xtext(value: str) -> str:
    """RFC 3461 §4 xtext: ``+HH`` is the character of hexadecimal code HH."""
    if not _XTEXT.match(value):
        raise MalformedParameter(f"{value!r} is not xtext (RFC 3461 section 4)")
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def _read(name: str, value: str, found: dict[str, str]) -> None:
    if name in found:
        raise MalformedParameter(f"{name} given twice")
    if name == "NOTIFY":
        words = value.upper().split(",")
        if words != ["NEVER"] and (not set(words) <= _NOTIFY or len(set(words)) != len(words)):
            raise MalformedParameter("NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY")
        found[name] = ",".join(words)
    elif name == "ORCPT":
        addr_type, semicolon, address = value.partition(";")
        if (
            not semicolon
            or not _ADDR_TYPE.match(addr_type)
            or not address
            or len(value) > _MAX_ORCPT
        ):
            raise MalformedParameter("ORCPT is addr-type;xtext, at most 500 characters")
        found[name] = f"{addr_type.lower()};{decode_xtext(address)}"
    elif name == "RET":
        if value.upper() not in ("FULL", "HDRS"):
            raise MalformedParameter("RET is FULL or HDRS")
        found[name] = value.upper()
    elif name == "ENVID":
        if len(value) > _MAX_ENVID:
            raise MalformedParameter("ENVID is at most 100 characters")
        found[name] = decode_xtext(value)


def take_dsn_parameters(arg: str, names: frozenset[str]) -> tuple[DsnParameters, str]:
    """Split the DSN parameters ``names`` off a ``FROM:<path> ...`` or ``TO:<path> ...`` argument.

    Returns them and the argument without them, for aiosmtpd; raises
    MalformedParameter. Parameters are looked for only after the path's ``>``.
    """
    close = arg.find(">")
    if close < 0:
        return DsnParameters(), arg
    head = arg[: close + 1]
    kept: list[str] = []
    found: dict[str, str] = {}
    for word in arg[close + 1 :].split():
        keyword, equals, value = word.partition("=")
        if keyword.upper() in names:
            if not equals or not value:
                raise MalformedParameter(f"{keyword.upper()} needs a value")
            _read(keyword.upper(), value, found)
        else:
            kept.append(word)
    notify = tuple(found["NOTIFY"].split(",")) if "NOTIFY" in found else ()
    params = DsnParameters(
        notify=notify,
        original_recipient=found.get("ORCPT"),
        ret=found.get("RET"),
        envid=found.get("ENVID"),
    )
    return params, " ".join([head, *kept])
