"""The documents of "Mon dossier": list, filter, one document's narrative and PDF, masking; and who
reaches what (no other patient's document by changing an id; hidden ones read as missing)."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from dmp_bridge.filing import RECORD_LINK
from dmp_bridge.models import DmpDocument
from mss.audit import AuditEvent
from mss.directory.models import Patient
from portal.record import NOT_FOUND_SENTENCE
from tests.portal.conftest import Hub, add_guardianship, add_patient
from tests.portal.dossier_world import TITLES, add_professionals, file_documents
from tests.xdm_factory import PDF

CLAIRE, JEAN = "201751234560554", "101751234560804"  # two adults
PARENT, CHILD = "201751234566195", "101751234560606"  # a guardian and the minor they hold


async def _claire(hub: Hub) -> tuple[Patient, dict[str, int]]:
    await add_professionals(hub.db)
    claire = await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    return claire, await file_documents(hub.db, claire)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_the_list_shows_what_the_patient_may_see_with_type_author_and_date(hub: Hub) -> None:
    _claire_row, _ids = await _claire(hub)
    await hub.login(CLAIRE)
    response, html = await hub.page("/dossier")
    text = _text(html)
    assert response.status == 200
    for name in ("plain", "masked", "invisible_guardians", "biology"):
        assert TITLES[name] in text
    assert (
        TITLES["invisible_patient"] not in text
    )  # INVISIBLE_PATIENT until a professional reveals it
    assert "Dr Marc LEFEBVRE, médecin · Hôpital Saint-Louis" in text
    assert "Compte rendu d'examens biologiques" in text and "Masqué aux professionnels" in text
    assert "4 documents" in text
    _response, html = await hub.page("/dossier?type=11502-2")
    text = _text(html)
    assert TITLES["biology"] in text and TITLES["plain"] not in text and "1 document" in text
    _response, html = await hub.page("/dossier?tri=type")
    assert html.index("Compte rendu de consultation</h2>") > html.index("biologiques</h2>")


async def test_the_notification_link_lands_on_the_documents_list(hub: Hub) -> None:
    await _claire(hub)
    assert RECORD_LINK == "/dossier"
    response, _html = await hub.page(RECORD_LINK)
    assert response.status == 303 and response.headers["Location"] == "/connexion"
    await hub.login(CLAIRE)
    _response, html = await hub.page("/")
    assert 'href="/dossier"' in html
    response, html = await hub.page(RECORD_LINK)
    assert response.status == 200 and TITLES["plain"] in unescape(html)


async def test_a_cda_shows_its_sanitised_narrative_and_its_pdf_downloads(hub: Hub) -> None:
    _claire_row, ids = await _claire(hub)
    await hub.login(CLAIRE)
    response, html = await hub.page(f"/dossier/documents/{ids['plain']}")
    assert response.status == 200
    assert (
        "<p>Patiente vue en consultation.</p>" in html and "<strong>Pas de fièvre</strong>" in html
    )
    assert "<h3>Motif</h3>" in html  # the CDA section title, under the page's "Contenu" heading
    assert "javascript:" not in html and "<span>lien piégé</span>" in html
    assert '<a href="https://www.has-sante.fr/" rel="noopener noreferrer nofollow">' in html
    assert "Dr Marc LEFEBVRE, médecin" in _text(html)
    response = await hub.client.get(f"/dossier/documents/{ids['plain']}/pdf")
    assert response.status == 200 and response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="Compte-rendu-de-consultation-du-15-janvier.pdf"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.read() == PDF
    async with hub.db.read() as session:
        reads = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "document_read",
                    AuditEvent.target == f"dmp-document:{ids['plain']}",
                )
            )
        ).all()
    assert sorted(e.detail["rendition"] for e in reads) == ["original", "pdf"]
    _response, html = await hub.page("/historique")
    assert "Document consulté (Compte rendu de consultation du 15 janvier, PDF)" in _text(html)


async def _not_found(hub: Hub, path: str) -> str:
    response, html = await hub.page(path)
    assert response.status == 404, path
    assert NOT_FOUND_SENTENCE in unescape(html)
    return _text(html).replace(path, "")


async def test_no_patient_reaches_another_patients_document_by_changing_the_id(hub: Hub) -> None:
    _claire_row, ids = await _claire(hub)
    await add_patient(hub.db, JEAN, "Moreau", "Jean", phone="+33698765432")
    await hub.login(JEAN)
    missing = await _not_found(hub, "/dossier/documents/999999")
    for document_id in ids.values():
        for suffix in ("", "/pdf", "/fichier"):
            assert await _not_found(hub, f"/dossier/documents/{document_id}{suffix}") == missing
        response = await hub.post(
            f"/dossier/documents/{document_id}/masquage", {"masquer": "oui"}, csrf_from="/dossier"
        )
        assert response.status == 404
    _response, html = await hub.page("/dossier")
    assert not any(title in unescape(html) for title in TITLES.values())
    async with hub.db.read() as session:
        masked = {
            d.id: d.masked_from_professionals
            for d in (await session.scalars(select(DmpDocument))).all()
        }
    assert masked[ids["plain"]] is False


async def test_a_document_hidden_from_the_patient_reads_exactly_like_a_missing_one(
    hub: Hub,
) -> None:
    _claire_row, ids = await _claire(hub)
    await hub.login(CLAIRE)
    missing = await _not_found(hub, "/dossier/documents/999999")
    hidden = ids["invisible_patient"]
    assert await _not_found(hub, f"/dossier/documents/{hidden}") == missing
    assert await _not_found(hub, f"/dossier/documents/{hidden}/pdf") == missing
    assert await _not_found(hub, "/dossier/documents/abc") == missing
    response = await hub.post(
        f"/dossier/documents/{hidden}/masquage", {"masquer": "oui"}, csrf_from="/dossier"
    )
    assert response.status == 404 and NOT_FOUND_SENTENCE in unescape(await response.text())
    _response, html = await hub.page("/historique")
    assert TITLES["invisible_patient"] not in unescape(html)


async def test_a_guardian_sees_the_minors_documents_except_those_hidden_from_guardians(
    hub: Hub,
) -> None:
    await add_professionals(hub.db)
    parent = await add_patient(hub.db, PARENT, "Leroy", "Sophie")
    child = await add_patient(hub.db, CHILD, "Leroy", "Léo", phone=None, password=False)
    await add_guardianship(hub.db, parent, child)
    ids = await file_documents(hub.db, child)
    await hub.login(PARENT)
    _response, html = await hub.page("/dossier")
    assert TITLES["plain"] not in unescape(html)  # the parent's own record is empty
    assert (await hub.post("/espace", {"patient": str(child.id)}, csrf_from="/")).status == 303
    _response, html = await hub.page("/dossier")
    text = _text(html)
    assert "Dossier médical de Léo Leroy" in text
    assert {name for name, title in TITLES.items() if title in text} == {
        "plain",
        "masked",
        "biology",
    }
    missing = await _not_found(hub, "/dossier/documents/999999")
    for name in ("invisible_guardians", "invisible_patient"):
        assert await _not_found(hub, f"/dossier/documents/{ids[name]}") == missing
        assert await _not_found(hub, f"/dossier/documents/{ids[name]}/pdf") == missing
    response, _html = await hub.page(f"/dossier/documents/{ids['plain']}")
    assert response.status == 200
    response = await hub.post(
        f"/dossier/documents/{ids['plain']}/masquage",
        {"masquer": "oui"},
        csrf_from=f"/dossier/documents/{ids['plain']}",
    )
    assert response.status == 303
    async with hub.db.read() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action.in_(("document_read", "document_masked")),
                    AuditEvent.patient_id == child.id,
                )
            )
        ).all()
    assert {(e.action, e.actor_kind, e.actor) for e in events} == {
        ("document_read", "guardian", PARENT),
        ("document_masked", "guardian", PARENT),
    }


async def test_masking_hides_from_professionals_and_shows_in_the_history(hub: Hub) -> None:
    _claire_row, ids = await _claire(hub)
    await hub.login(CLAIRE)
    page = f"/dossier/documents/{ids['plain']}"
    _response, html = await hub.page(page)
    assert (
        "Seuls le médecin traitant et l'auteur du document peuvent encore le consulter"
        in unescape(html)
    )
    response = await hub.post(f"{page}/masquage", {"masquer": "oui"}, csrf_from=page)
    assert response.status == 303 and response.headers["Location"] == f"{page}?fait=masque"
    _response, html = await hub.page(f"{page}?fait=masque")
    assert "Le document est masqué aux professionnels" in unescape(html)
    async with hub.db.read() as session:
        assert (await session.get(DmpDocument, ids["plain"])).masked_from_professionals  # type: ignore[union-attr]
    response = await hub.post(f"{page}/masquage", {"masquer": "non"}, csrf_from=page)
    assert response.headers["Location"] == f"{page}?fait=demasque"
    async with hub.db.read() as session:
        assert not (await session.get(DmpDocument, ids["plain"])).masked_from_professionals  # type: ignore[union-attr]
    _response, html = await hub.page("/historique")
    text = _text(html)
    assert "Document masqué aux professionnels" in text
    assert (
        "Document de nouveau visible par les professionnels" in text
        and "Claire Martin (vous-même)" in text
    )
