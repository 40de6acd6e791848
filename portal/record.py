"""The current space's medical record (DMP) as the portal reaches it: who acts, on whose record.

The person signed in acts as the patient in their own space and as a
guardian in a held minor's space; every read and change goes through the
DMP store (``dmp_bridge``), which asks the consent engine and audits. The
patient is loaded in the caller's transaction because consent changes
write to it (the médecin traitant).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused, Viewer
from dmp_bridge.consent_store import consent_record
from mss.directory.models import Patient, PatientState
from mss.directory.store import patient_by_id
from mss.policy.decision import Decision
from mss.web import attachment_disposition
from portal.context import source_of, visit
from portal.pages import render

# One sentence for a document that does not exist and one the viewer may not see.
NOT_FOUND_TITLE = "Document introuvable"
NOT_FOUND_SENTENCE = (
    "Ce document n'existe pas dans ce dossier, ou il n'est pas accessible depuis votre espace."
)

CLOSED_SENTENCE = (
    "Ce dossier médical est fermé (opposition au dossier, ou compte qui n'est pas actif) : "
    "ses documents ne peuvent pas être consultés ni modifiés."
)


def viewer_of(request: web.Request) -> Viewer:
    """The patient in their own space; a guardian in the space of a minor they hold."""
    state = visit(request)
    assert state.person is not None and state.space is not None
    if state.space.id == state.person.id:
        return Viewer.for_patient(state.person, source=source_of(request))
    return Viewer.for_guardian(state.person, source=source_of(request))


async def space_patient(session: AsyncSession, request: web.Request) -> Patient:
    """The patient whose record is shown, attached to ``session``."""
    state = visit(request)
    assert state.space is not None
    patient = await patient_by_id(session, state.space.id)
    assert patient is not None
    return patient


def document_id(request: web.Request) -> int | None:
    text = request.match_info.get("id", "")
    return int(text) if text.isdigit() and len(text) < 18 else None


async def not_found(request: web.Request) -> web.Response:
    """The same page for a missing document and a hidden one."""
    return await render(
        request,
        "dossier_introuvable.html",
        {"title": NOT_FOUND_TITLE, "sentence": NOT_FOUND_SENTENCE},
        status=404,
    )


async def refused(request: web.Request, decision: Decision) -> web.Response:
    """A consent refusal as a page; a 404 always reads as a missing document."""
    if decision.status == 404 and decision.reason == "not_found":
        return await not_found(request)
    if decision.reason == "no_record":
        return await render(
            request,
            "dossier_introuvable.html",
            {"title": "Dossier fermé", "sentence": CLOSED_SENTENCE},
            status=404,
        )
    return await render(
        request,
        "refus.html",
        {"title": "Action impossible", "sentence": decision.sentence_fr + "."},
        status=decision.status,
    )


async def closed_reason(session: AsyncSession, patient: Patient) -> str:
    """Why the record is closed, in French ("" when it is open)."""
    row = await consent_record(session, patient)
    if row is not None and row.dmp_opposed:
        return (
            "Vous vous êtes opposé à ce dossier médical : aucun document n'y est ajouté et "
            "personne ne peut le consulter. Vous pouvez lever cette opposition dans « Qui peut "
            "voir mon dossier »."
        )
    if patient.state is not PatientState.ACTIVE:
        return (
            "Le dossier médical n'est pas accessible tant que le compte n'est pas actif : "
            "réactivez le compte pour le consulter."
        )
    return ""


def is_no_record(error: DmpRefused) -> bool:
    return error.decision.reason == "no_record"


def attachment(body: bytes, content_type: str, title: str, extension: str) -> web.Response:
    """A download (never shown inline), named after the document's title (RFC 6266)."""
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": attachment_disposition(title, extension)},
    )


def notice(request: web.Request, notices: dict[str, str]) -> str:
    return notices.get(request.query.get("fait", ""), "")


def common(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every "Mon dossier" page needs besides its own values."""
    state = visit(request)
    assert state.person is not None and state.space is not None
    return {"own_space": state.space.id == state.person.id, **values}
