"""Import the MSSanté trust list (listeblanchemssante.xml) into ``trusted_domains``.

One row per (domain, operator certificate DN): the list repeats a ``Nom``
once per certificate of its operator. The file replaces the set: a row
absent from the new file is disabled, not deleted, so its history stays.

The XML is read with defusedxml's SAX parser (for line numbers): entity
declarations (billion laughs, external entities) and external DTDs are
refused before anything is expanded or fetched.
"""

from __future__ import annotations

import io
import re
import xml.sax
import xml.sax.xmlreader
from dataclasses import dataclass
from typing import Any

from defusedxml.common import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.expatreader import DefusedExpatParser
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import utcnow
from mss.directory.identifiers import normalise_dn, normalise_domain
from mss.directory.imports import (
    Entry,
    ImportReport,
    apply_entries,
    read_input,
    record_import,
    refuse_or_skip,
)
from mss.directory.models import TrustedDomain
from mss.errors import InvalidInput
from mss.xml_depth import MAX_XML_DEPTH

NAMESPACE = "https://listeblanche.mssante.fr/schema"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
FIELDS = (
    "Nom",
    "Description",
    "DNCertificatOperateur",
    "ResponsableContact",
    "SupportContact",
    "DateMAJ",
)


@dataclass(frozen=True)
class DomainEntry:
    domain: str
    operator_dn: str
    description: str
    contact: str


class _StrictParser(DefusedExpatParser):
    """defusedxml's expat reader that also refuses a DOCTYPE pointing at an external DTD."""

    def reset(self) -> None:
        super().reset()
        self._parser.StartDoctypeDeclHandler = self._doctype

    def _doctype(self, name: str, sysid: str | None, pubid: str | None, _internal: bool) -> None:
        if sysid or pubid:
            raise DTDForbidden(name, sysid, pubid)


class _Handler(xml.sax.handler.ContentHandler):
    """Collects the Domaine elements with their line, skipping an XML-DSig Signature."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.domains: list[tuple[int, dict[str, str]]] = []
        self.signed = False
        self._current: dict[str, str] | None = None
        self._text: list[str] = []
        self.locator: xml.sax.xmlreader.Locator | None = None

    def setDocumentLocator(self, locator: xml.sax.xmlreader.Locator) -> None:
        self.locator = locator

    def line(self) -> int:
        line = self.locator.getLineNumber() if self.locator is not None else None
        return line or 0

    def startElementNS(self, name: tuple[str | None, str], qname: Any, attrs: Any) -> None:
        uri, local = name[0] or "", name[1]
        if len(self.stack) >= MAX_XML_DEPTH:
            raise InvalidInput(
                f"the elements nest more than {MAX_XML_DEPTH} levels deep; a whitelist nests five"
            )
        if not self.stack and (uri, local) != (NAMESPACE, "ListeBlancheMSSante"):
            found = f"{{{uri}}}{local}" if uri else local
            raise InvalidInput(
                f"the root element is {found}, not ListeBlancheMSSante in the "
                f"namespace {NAMESPACE}: this is not an MSSanté whitelist"
            )
        self.stack.append((uri, local))
        if uri == XMLDSIG and local == "Signature":
            self.signed = True
        if (uri, local) == (NAMESPACE, "Domaine"):
            self._current = {}
            self.domains.append((self.line(), self._current))
        self._text = []

    def characters(self, content: str) -> None:
        self._text.append(content)

    def endElementNS(self, name: tuple[str | None, str], qname: Any) -> None:
        self.stack.pop()
        uri, local = name[0] or "", name[1]
        inside_domain = self.stack and self.stack[-1] == (NAMESPACE, "Domaine")
        if inside_domain and uri == NAMESPACE and local in FIELDS and self._current is not None:
            self._current[local] = " ".join("".join(self._text).split())
        if (uri, local) == (NAMESPACE, "Domaine"):
            self._current = None
        self._text = []


def _hostile(exc: DefusedXmlException) -> str:
    if isinstance(exc, EntitiesForbidden):
        if exc.sysid or exc.pubid:
            return (
                f"the file declares the external entity {exc.name!r} "
                f"({exc.sysid or exc.pubid}); external entities are refused, the hub never "
                "reads files or URLs named inside a document (XXE)"
            )
        return (
            f"the file declares the entity {exc.name!r}; entity declarations are refused "
            "because nested entities can expand to gigabytes (billion laughs)"
        )
    if isinstance(exc, DTDForbidden):
        return (
            f"the file refers to the external DTD {exc.sysid or exc.pubid!r}; "
            "external DTDs are refused, the hub fetches nothing a document names"
        )
    return "the file refers to an external resource; external references are refused"


def parse_xml(data: bytes, path: str) -> _Handler:
    """Parse the whole file, or refuse it with the line of the problem."""
    handler = _Handler()
    parser = _StrictParser(namespaceHandling=1)
    parser.setContentHandler(handler)
    try:
        parser.parse(io.BytesIO(data))
    except DefusedXmlException as exc:
        raise InvalidInput(_hostile(exc), where=f"{path}:{handler.line()}") from None
    except xml.sax.SAXParseException as exc:
        raise InvalidInput(
            f"not well-formed XML: {exc.getMessage()}", where=f"{path}:{exc.getLineNumber()}"
        ) from None
    except InvalidInput as exc:
        raise InvalidInput(exc.sentence, where=f"{path}:{handler.line()}") from None
    except (LookupError, ValueError):  # an encoding Python does not know ("UTQ-8"), or multi-byte
        raise InvalidInput(
            "the XML declaration names an unknown encoding; save the file as UTF-8",
            where=f"{path}:1",
        ) from None
    return handler


def _entry(fields: dict[str, str]) -> DomainEntry:
    if not fields.get("Nom"):
        raise InvalidInput("this Domaine has no Nom")
    if not fields.get("DNCertificatOperateur"):
        raise InvalidInput(f"Domaine {fields['Nom']} has no DNCertificatOperateur")
    contacts = [
        f"{label}: {fields[key]}"
        for key, label in (("ResponsableContact", "responsable"), ("SupportContact", "support"))
        if fields.get(key)
    ]
    return DomainEntry(
        domain=normalise_domain(fields["Nom"]),
        operator_dn=normalise_dn(fields["DNCertificatOperateur"]),
        description=fields.get("Description", ""),
        contact="; ".join(contacts),
    )


def parse_whitelist(
    data: bytes, path: str, report: ImportReport, *, skip_invalid: bool
) -> tuple[list[Entry[DomainEntry]], set[str]]:
    """The checked entries, and the names of skipped domains (left as they are)."""
    handler = parse_xml(data, path)
    if handler.signed:
        # Verifying the enveloped XML-DSig (exc-c14n, RSA-SHA256, IGC-Santé signer) is out
        # of scope: the operator is expected to fetch the file over HTTPS from the ANS.
        report.warn(f"{path}: the XML-DSig signature was not verified")
    entries: list[Entry[DomainEntry]] = []
    skipped_names: set[str] = set()
    seen: dict[tuple[str, str], int] = {}
    for line, fields in handler.domains:
        try:
            try:
                entry = _entry(fields)
            except InvalidInput:
                skipped_names.add(re.sub(r"\s", "", fields.get("Nom", "")).lower().rstrip("."))
                raise
            if (entry.domain, entry.operator_dn) in seen:
                raise InvalidInput(
                    f"Domaine {entry.domain} with this DNCertificatOperateur is "
                    f"already listed on line {seen[entry.domain, entry.operator_dn]}"
                )
            seen[entry.domain, entry.operator_dn] = line
            entries.append(Entry(f"{path}:{line}", entry))
        except InvalidInput as exc:
            refuse_or_skip(InvalidInput(exc.sentence, where=f"{path}:{line}"), report, skip_invalid)
    if not entries:
        raise InvalidInput(
            "no valid Domaine entry; refusing to disable the whole trust list", where=path
        )
    return entries, skipped_names


async def import_whitelist(
    session: AsyncSession, path: str, *, skip_invalid: bool = False
) -> ImportReport:
    """Replace the trust list with the file's, in the caller's transaction."""
    report = ImportReport(source=path)
    entries, skipped_names = parse_whitelist(
        read_input(path), path, report, skip_invalid=skip_invalid
    )
    rows = {
        (row.domain, row.operator_dn): row
        for row in (await session.scalars(select(TrustedDomain))).all()
    }

    async def apply(entry: DomainEntry) -> str:
        row = rows.pop((entry.domain, entry.operator_dn), None)
        if row is None:
            session.add(
                TrustedDomain(
                    domain=entry.domain,
                    operator_dn=entry.operator_dn,
                    description=entry.description,
                    contact=entry.contact,
                    enabled=True,
                    updated_at=utcnow(),
                )
            )
            return "added"
        wanted = {"description": entry.description, "contact": entry.contact, "enabled": True}
        if all(getattr(row, key) == value for key, value in wanted.items()):
            return "unchanged"
        for key, value in wanted.items():
            setattr(row, key, value)
        return "updated"

    await apply_entries(
        session, entries, apply, report, skip_invalid=skip_invalid, description="domains"
    )
    for row in rows.values():
        if row.enabled and row.domain not in skipped_names:
            row.enabled = False
            report.disabled += 1
    record_import(session, "whitelist", report)
    await session.flush()
    return report
