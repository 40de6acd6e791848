""" "Mon dossier": the documents of the current space's record, one document, its PDF, masking.

Every read goes through the DMP store, which applies consent (a document
hidden from the patient, or from guardians, is absent from the list and
404 like a missing one) and leaves the audit event the history shows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import nh3
from aiohttp import web

from dmp_bridge.access import DmpRefused
from dmp_bridge.cda import narrative_html
from dmp_bridge.documents import get_document, list_documents_for, mask_document
from dmp_bridge.errors import XdmError
from dmp_bridge.models import DmpDocument
from mss.policy.decision import Decision
from mss.policy.patient_dossier import ACCEPTED_TYPES
from portal.clock import PARIS
from portal.context import db_of
from portal.pages import redirect, render, signed_in
from portal.professionals import ProfessionalCard, cards_for
from portal.record import (
    attachment,
    closed_reason,
    common,
    document_id,
    is_no_record,
    not_found,
    notice,
    refused,
    space_patient,
    viewer_of,
)

OTHER_TYPE = "autre"
NOTICES = {
    "masque": "Le document est masqué aux professionnels : seuls votre médecin traitant et son "
    "auteur peuvent encore le consulter.",
    "demasque": "Le document est de nouveau visible par les professionnels "
    "que vous avez autorisés.",
    "ajoute": "Le document est ajouté à votre dossier.",
}
NARRATIVE_TAGS = {
    "section",
    "div",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "ul",
    "ol",
    "li",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "caption",
    "sub",
    "sup",
    "span",
    "strong",
    "em",
    "u",
    "small",
    "br",
    "pre",
    "a",
}
NARRATIVE_ATTRIBUTES = {"a": {"href"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
_HEADING = re.compile(r"<(/?)h([2-6])>")
XML_TYPES = ("text/xml", "application/xml", "application/hl7-v3+xml", "application/hl7-cda+xml")


@dataclass(frozen=True)
class DocumentLine:
    """One document as the pages show it."""

    id: int
    title: str
    type_key: str
    type_label: str
    day: str
    iso: str
    author: str  # name, or who added it from the portal
    profession: str
    institution: str
    by_patient: bool
    masked: bool
    has_pdf: bool
    mime_type: str


def _when(document: DmpDocument) -> dt.datetime:
    return document.creation_time or document.filed_at


def describe(document: DmpDocument, cards: dict[str, ProfessionalCard]) -> DocumentLine:
    found = cards.get(document.author_id_nat or "")
    label = document.type_label or document.class_label or "Autre document"
    return DocumentLine(
        id=document.id,
        title=document.title or label,
        type_key=document.type_code or OTHER_TYPE,
        type_label=label,
        day=_when(document).astimezone(PARIS).strftime("%d/%m/%Y"),
        iso=_when(document).isoformat(),
        author=document.author_name or (found.name if found else ""),
        profession=found.profession if found and found.id is not None else "",
        institution=document.author_institution or (found.institution if found else ""),
        by_patient=document.author_id_nat is None,
        masked=document.masked_from_professionals,
        has_pdf=document.has_pdf,
        mime_type=document.mime_type,
    )


def _types(lines: list[DocumentLine]) -> dict[str, str]:
    """Each type present, with the label of its first document, sorted by label."""
    found: dict[str, str] = {}
    for line in lines:
        found.setdefault(line.type_key, line.type_label)
    return dict(sorted(found.items(), key=lambda item: item[1].lower()))


def _groups(lines: list[DocumentLine], by_type: bool) -> list[tuple[str, list[DocumentLine]]]:
    """By type (each type's documents newest first), or one group by date."""
    if not by_type:
        return [("", lines)]
    groups: dict[str, list[DocumentLine]] = {}
    for line in lines:
        groups.setdefault(line.type_label, []).append(line)
    return sorted(groups.items(), key=lambda item: item[0].lower())


@signed_in
async def documents(request: web.Request) -> web.StreamResponse:
    """The list, newest first; ``type`` filters, ``tri=type`` groups by type."""
    viewer = viewer_of(request)
    chosen, by_type = request.query.get("type", ""), request.query.get("tri") == "type"
    lines: list[DocumentLine] = []
    closed, decision = "", None
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        try:
            found = await list_documents_for(session, viewer, patient)
        except DmpRefused as error:
            if is_no_record(error):
                closed = await closed_reason(session, patient)
            else:
                decision = error.decision
        else:
            cards = await cards_for(session, [d.author_id_nat for d in found if d.author_id_nat])
            lines = [describe(d, cards) for d in found]
    if decision is not None:
        return await refused(request, decision)
    types = _types(lines)
    shown = [line for line in lines if line.type_key == chosen] if chosen in types else lines
    return await render(
        request,
        "dossier.html",
        common(
            request,
            tab="documents",
            title="Mon dossier",
            closed=closed,
            total=len(lines),
            types=types,
            chosen=chosen if chosen in types else "",
            by_type=by_type,
            groups=_groups(shown, by_type),
            count=len(shown),
            notice=notice(request, NOTICES),
        ),
    )


def clean_narrative(data: bytes) -> str:
    """The CDA narrative as simple HTML, sanitised again with an allow-list (nh3).

    Its section titles move one level down (h2 becomes h3), under the page's "Contenu" heading.
    """
    html = nh3.clean(
        narrative_html(data),
        tags=NARRATIVE_TAGS,
        attributes=NARRATIVE_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return _HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + 1, 6)}>", html)


async def _narrative(document: DmpDocument, data: bytes) -> tuple[str, bool]:
    """(HTML, unreadable) for an XML document; ("", False) for others."""
    if document.mime_type.split(";", 1)[0].strip().lower() not in XML_TYPES:
        return "", False
    try:
        return await asyncio.to_thread(clean_narrative, data), False
    except XdmError:
        return "", True


@signed_in
async def document_page(request: web.Request) -> web.StreamResponse:
    """One document: what it is, who wrote it, its narrative, its downloads, masking."""
    wanted = document_id(request)
    if wanted is None:
        return await not_found(request)
    viewer = viewer_of(request)
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        try:
            document, data = await get_document(session, viewer, patient, wanted)
        except DmpRefused as error:
            decision: Decision | None = error.decision
        else:
            decision = None
            cards = await cards_for(
                session, [document.author_id_nat] if document.author_id_nat else []
            )
    if decision is not None:
        return await refused(request, decision)
    html, unreadable = await _narrative(document, data)
    line = describe(document, cards)
    return await render(
        request,
        "dossier_document.html",
        common(
            request,
            tab="documents",
            title=line.title,
            d=line,
            narrative=html,
            unreadable=unreadable,
            filed=document.filed_at.astimezone(PARIS).strftime("%d/%m/%Y"),
            downloadable=document.mime_type in ACCEPTED_TYPES and not document.has_pdf,
            notice=notice(request, NOTICES),
        ),
    )


async def _download(request: web.Request, rendition: str) -> web.StreamResponse:
    wanted = document_id(request)
    if wanted is None:
        return await not_found(request)
    viewer = viewer_of(request)
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        try:
            document, data = await get_document(
                session, viewer, patient, wanted, rendition=rendition
            )
        except DmpRefused as error:
            decision: Decision | None = error.decision
        else:
            decision = None
    if decision is not None:
        return await refused(request, decision)
    if rendition == "pdf":
        return attachment(data, "application/pdf", document.title or document.type_label, ".pdf")
    mime_type = (
        document.mime_type if document.mime_type in ACCEPTED_TYPES else "application/octet-stream"
    )
    extension = ACCEPTED_TYPES[mime_type][2][0] if mime_type in ACCEPTED_TYPES else ".bin"
    return attachment(data, mime_type, document.title or document.type_label, extension)


@signed_in
async def download_pdf(request: web.Request) -> web.StreamResponse:
    """The document's PDF rendering, as a download."""
    return await _download(request, "pdf")


@signed_in
async def download_file(request: web.Request) -> web.StreamResponse:
    """The file as filed (a patient's image or PDF), as a download."""
    return await _download(request, "original")


@signed_in
async def change_masking(request: web.Request) -> web.StreamResponse:
    """MASQUE_PS on (``masquer=oui``) or off (``masquer=non``)."""
    wanted = document_id(request)
    choice = str((await request.post()).get("masquer", ""))
    if wanted is None or choice not in ("oui", "non"):
        return await not_found(request)
    viewer = viewer_of(request)
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        try:
            await mask_document(session, viewer, patient, wanted, masked=choice == "oui")
        except DmpRefused as error:
            decision: Decision | None = error.decision
        else:
            decision = None
    if decision is not None:
        return await refused(request, decision)
    return redirect(
        f"/dossier/documents/{wanted}?fait={'masque' if choice == 'oui' else 'demasque'}"
    )


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("/dossier", "dossier", {"GET": documents}),
    ("/dossier/documents/{id}", "dossier_document", {"GET": document_page}),
    ("/dossier/documents/{id}/pdf", "dossier_pdf", {"GET": download_pdf}),
    ("/dossier/documents/{id}/fichier", "dossier_file", {"GET": download_file}),
    ("/dossier/documents/{id}/masquage", "dossier_mask", {"POST": change_masking}),
]
