"""The MSSanté mailbox as a FHIR ContactPoint, read by the import and written by the API.

Annuaire Santé shape (IG ``ansforge/IG-fhir-annuaire``, profile ``as-mailbox-mss``):
a ``telecom`` with ``system = email`` carrying the extension
``fr-core-contact-point-email-type`` = ``MSSANTE`` (TRE_R256) and/or the complex
extension ``as-ext-mailbox-mss-metadata`` (``type`` TRE_R257 PER/ORG/APP/CAB,
``description``, ``service``, ``listeRouge``...). An e-mail without either is an
ordinary address, not a mailbox. Older extracts put ``as-ext-mailbox-mss`` on the
resource itself, with ``value`` (the address) and ``publication`` (true = red list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mss.directory.identifiers import normalise_address
from mss.directory.models import Mailbox, MailboxKind
from mss.errors import InvalidInput

EMAIL_TYPE_URL = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
METADATA_URL = (
    "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/"
    "as-ext-mailbox-mss-metadata"
)
LEGACY_URL_SUFFIX = "/StructureDefinition/as-ext-mailbox-mss"
EMAIL_TYPE_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"
)
MAILBOX_TYPE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"
DIRECTORY_KINDS = {MailboxKind.PER, MailboxKind.ORG, MailboxKind.APP, MailboxKind.CAB}


@dataclass(frozen=True)
class MailboxInfo:
    """A mailbox read from a resource; ``kind`` None means the resource's default."""

    address: str
    kind: MailboxKind | None
    red_list: bool
    description: str


def _url_is(extension: dict[str, Any], name: str) -> bool:
    # The email-type extension was published under hl7.fr and interop.esante.gouv.fr.
    return str(extension.get("url", "")).endswith("/StructureDefinition/" + name)


def _codes(value: Any) -> list[str]:
    """The codes of a CodeableConcept, Coding or code value."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    codings = value.get("coding", [value])
    return [str(c["code"]) for c in codings if isinstance(c, dict) and "code" in c]


def _value(extension: dict[str, Any]) -> Any:
    return next((v for k, v in extension.items() if k.startswith("value")), None)


def _kind(value: Any, address: str) -> MailboxKind:
    for code in _codes(value):
        try:
            kind = MailboxKind(code.upper())
        except ValueError:
            continue
        if kind in DIRECTORY_KINDS:
            return kind
    raise InvalidInput(
        f"mailbox {address}: type {_codes(value) or value!r} is not one of "
        "PER, ORG, APP, CAB (TRE_R257)"
    )


def _subfields(extension: dict[str, Any]) -> dict[str, Any]:
    subs = extension.get("extension", [])
    return {str(s.get("url")): _value(s) for s in subs if isinstance(s, dict)}


def read_contact_point(contact: Any) -> MailboxInfo | None:
    """The mailbox carried by a ContactPoint, or None for a phone or ordinary e-mail."""
    if not isinstance(contact, dict) or contact.get("system") != "email":
        return None
    extensions = [e for e in contact.get("extension", []) if isinstance(e, dict)]
    email_type = next(
        (e for e in extensions if _url_is(e, "fr-core-contact-point-email-type")), None
    )
    metadata = next((e for e in extensions if _url_is(e, "as-ext-mailbox-mss-metadata")), None)
    is_mssante = email_type is not None and "MSSANTE" in _codes(_value(email_type))
    if not is_mssante and metadata is None:
        return None
    address = normalise_address(str(contact.get("value", "")))
    fields = _subfields(metadata) if metadata else {}
    return MailboxInfo(
        address=address,
        kind=_kind(fields["type"], address) if fields.get("type") else None,
        red_list=fields.get("listeRouge") is True,
        description=str(fields.get("description") or fields.get("service") or ""),
    )


def read_legacy_extension(extension: Any) -> MailboxInfo | None:
    """A mailbox from the older resource-level ``as-ext-mailbox-mss`` extension."""
    if not isinstance(extension, dict) or not str(extension.get("url", "")).endswith(
        LEGACY_URL_SUFFIX
    ):
        return None
    fields = _subfields(extension)
    if not fields.get("value"):
        raise InvalidInput("an as-ext-mailbox-mss extension has no value (the address)")
    address = normalise_address(str(fields["value"]))
    return MailboxInfo(
        address=address,
        kind=_kind(fields["type"], address) if fields.get("type") else None,
        red_list=fields.get("publication") is True,
        description=str(fields.get("description") or ""),
    )


def read_mailboxes(resource: dict[str, Any]) -> list[MailboxInfo]:
    """Every MSSanté mailbox of a Practitioner, PractitionerRole or Organization."""
    found = [read_contact_point(c) for c in resource.get("telecom", []) or []]
    found += [read_legacy_extension(e) for e in resource.get("extension", []) or []]
    return [m for m in found if m is not None]


def contact_point(mailbox: Mailbox) -> dict[str, Any]:
    """A published mailbox as the Annuaire Santé writes it (never call this for a red-listed
    one)."""
    metadata: list[dict[str, Any]] = [
        {
            "url": "type",
            "valueCodeableConcept": {
                "coding": [{"system": MAILBOX_TYPE_SYSTEM, "code": mailbox.kind.value}]
            },
        },
        {"url": "listeRouge", "valueBoolean": False},
    ]
    if mailbox.display_name and mailbox.kind is not MailboxKind.PER:
        metadata.insert(1, {"url": "description", "valueString": mailbox.display_name})
    return {
        "extension": [
            {
                "url": EMAIL_TYPE_URL,
                "valueCoding": {"system": EMAIL_TYPE_SYSTEM, "code": "MSSANTE"},
            },
            {"url": METADATA_URL, "extension": metadata},
        ],
        "system": "email",
        "value": mailbox.address,
    }
