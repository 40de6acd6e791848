""" "Mon dossier": the patient (or a guardian) adds a document of their own, a PDF or an image.

The file's first bytes, name, declared type and size are the facts;
``mss.policy.patient_dossier`` decides, and refusals are shown in French
on the form, which keeps the title and type typed.
"""

from __future__ import annotations

import io
from typing import IO, Any

from aiohttp import web

from dmp_bridge.access import DmpRefused
from dmp_bridge.documents import add_patient_document
from mss.directory.store import find_patient_mailbox
from mss.policy.decision import Decision
from mss.policy.patient_dossier import (
    MAX_PATIENT_DOCUMENT,
    PATIENT_DOCUMENT_TYPES,
    UploadFacts,
    decide_patient_upload,
)
from portal.context import db_of, visit
from portal.dossier_attachments import received_pdfs
from portal.pages import redirect, render, signed_in
from portal.record import common, refused, space_patient, viewer_of

HEAD_BYTES = 16


async def _form(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    state = visit(request)
    assert state.space is not None
    async with db_of(request).read() as session:
        mailbox = await find_patient_mailbox(session, state.space.id)
    pdfs = (
        await received_pdfs(
            db_of(request),
            viewer_of(request).kind,
            patient_id=state.space.id,
            mailbox_id=mailbox.id,
        )
        if mailbox is not None
        else []
    )
    return await render(
        request,
        "dossier_ajouter.html",
        common(
            request,
            tab="ajouter",
            title="Ajouter un document",
            types=PATIENT_DOCUMENT_TYPES,
            pdfs=pdfs,
            max_mb=MAX_PATIENT_DOCUMENT // (1024 * 1024),
            **{"form": {}, **extra},
        ),
        status=status,
    )


@signed_in
async def upload_form(request: web.Request) -> web.StreamResponse:
    return await _form(request)


def _size(file: IO[bytes]) -> int:
    file.seek(0, io.SEEK_END)
    size = file.tell()
    file.seek(0)
    return size


@signed_in
async def upload(request: web.Request) -> web.StreamResponse:
    """Check the file against the policy, then file it through the DMP store (audited)."""
    form = await request.post()
    values = {"titre": str(form.get("titre", "")), "type": str(form.get("type", ""))}
    field = form.get("fichier")
    file, filename, declared, size, head = None, "", "", 0, b""
    if isinstance(field, web.FileField):
        file, filename, declared = field.file, field.filename or "", field.content_type or ""
        size = _size(file)
        head = file.read(HEAD_BYTES)
    decision: Decision = decide_patient_upload(
        UploadFacts(
            filename=filename,
            declared_type=declared,
            size=size,
            head=head,
            title=values["titre"],
            type_key=values["type"],
        )
    )
    if not decision or file is None:
        return await _form(request, decision.status, error=decision.sentence_fr, form=values)
    file.seek(0)
    content = file.read()
    async with db_of(request).write() as session:
        patient = await space_patient(session, request)
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
            )
        except DmpRefused as error:
            refusal: Decision | None = error.decision
        else:
            refusal, added = None, document.id
    if refusal is not None:
        return await refused(request, refusal)
    return redirect(f"/dossier/documents/{added}?fait=ajoute")


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("/dossier/ajouter", "dossier_add", {"GET": upload_form, "POST": upload}),
]
