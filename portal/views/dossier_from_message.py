""" "Ajouter à mon dossier": a PDF attachment of a message the space received, filed as the
patient's own.

The attachment is found in the space's INBOX only and decoded from the
stored message; ``mss.policy.patient_dossier`` decides (a real PDF, within
the size limit, not filed twice) and the DMP store files it (audited),
keeping the message it came from.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from dmp_bridge.access import DmpRefused
from dmp_bridge.documents import add_patient_document
from dmp_bridge.message_documents import filed_attachment
from mss.directory.store import find_patient_mailbox
from mss.policy.decision import Decision
from mss.policy.patient_dossier import (
    PATIENT_DOCUMENT_TYPES,
    UploadFacts,
    decide_message_attachment,
)
from portal.context import db_of, visit
from portal.dossier_attachments import ReceivedPdf, load_received_pdf
from portal.pages import redirect, render, signed_in
from portal.record import common, refused, space_patient, viewer_of

NOT_FOUND = (
    "Cette pièce jointe n'existe pas dans les messages reçus de cet espace, ou ce n'est pas "
    "un document PDF."
)


async def _attachment(request: web.Request) -> tuple[ReceivedPdf, bytes] | None:
    entry, part = request.match_info["entry"], request.match_info["part"]
    if not entry.isdigit() or len(entry) > 18:
        return None
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        mailbox = await find_patient_mailbox(session, state.space.id)
    if mailbox is None:
        return None
    return await load_received_pdf(
        db_of(request),
        viewer_of(request).kind,
        patient_id=state.space.id,
        mailbox_id=mailbox.id,
        entry_id=int(entry),
        part=part,
    )


async def _form(
    request: web.Request, pdf: ReceivedPdf, status: int = 200, **extra: Any
) -> web.Response:
    title = pdf.filename[:-4] if pdf.filename.lower().endswith(".pdf") else pdf.filename
    return await render(
        request,
        "dossier_depuis_message.html",
        common(
            request,
            tab="ajouter",
            title="Ajouter une pièce jointe au dossier",
            pdf=pdf,
            types=PATIENT_DOCUMENT_TYPES,
            **{"form": {"titre": title, "type": ""}, **extra},
        ),
        status=status,
    )


async def _missing(request: web.Request) -> web.Response:
    return await render(
        request,
        "dossier_introuvable.html",
        {"title": "Pièce jointe introuvable", "sentence": NOT_FOUND},
        status=404,
    )


@signed_in
async def confirm_form(request: web.Request) -> web.StreamResponse:
    found = await _attachment(request)
    if found is None:
        return await _missing(request)
    return await _form(request, found[0])


@signed_in
async def add_from_message(request: web.Request) -> web.StreamResponse:
    """File the attachment with the title and type chosen; the message is kept as its origin."""
    found = await _attachment(request)
    if found is None:
        return await _missing(request)
    pdf, content = found
    form = await request.post()
    values = {"titre": str(form.get("titre", "")), "type": str(form.get("type", ""))}
    digest = hashlib.sha256(content).hexdigest()
    refusal: Decision | None = None
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
        already = await filed_attachment(session, patient.id, pdf.stored_message_id, digest)
        decision = decide_message_attachment(
            UploadFacts(
                filename=pdf.filename,
                declared_type="application/pdf",
                size=len(content),
                head=content[:16],
                title=values["titre"],
                type_key=values["type"],
            ),
            already_filed=already is not None,
        )
        if decision:
            try:
                document = await add_patient_document(
                    session,
                    viewer_of(request),
                    patient,
                    content=content,
                    mime_type=decision.mime_type,
                    title=values["titre"].strip(),
                    type_code=decision.type_code,
                    type_label=decision.type_label,
                    source_message_id=pdf.message_id,
                    stored_message_id=pdf.stored_message_id,
                )
            except DmpRefused as error:
                refusal = error.decision
    if refusal is not None:
        return await refused(request, refusal)
    if not decision:
        return await _form(
            request, pdf, decision.status, error=decision.sentence_fr, form=values, existing=already
        )
    return redirect(f"/dossier/documents/{document.id}?fait=ajoute")


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "/dossier/depuis-message/{entry}/{part}",
        "dossier_from_message",
        {"GET": confirm_form, "POST": add_from_message},
    ),
]
