"""The medical profile through the portal, and its PDF/A summary read back with pypdf."""

from __future__ import annotations

import io
from html import unescape

from pypdf import PdfReader
from sqlalchemy import select

from mss.audit import AuditEvent
from tests.agenda.conftest import INS, PASSWORD, AgendaHub, PortalHub

ITEMS = [
    ("allergy", "Pénicilline", "Urticaire et œdème", "2019"),
    ("medical_history", "Appendicectomie", "", "enfance"),
    ("family_history", "Diabète de type 2 (père)", "", ""),
    ("vaccination", "DTPolio", "Rappel", "2021"),
    ("treatment", "Lévothyroxine 75 µg", "1 comprimé le matin", ""),
]


async def test_profile_items_and_the_pdf_summary(agenda_hub: AgendaHub, portal: PortalHub) -> None:
    await portal.login(INS, PASSWORD)
    for category, label, detail, when in ITEMS:
        response = await portal.post(
            "/profil/ajouter",
            {"rubrique": category, "libelle": label, "precisions": detail, "quand": when},
            csrf_from="/profil",
        )
        assert response.status == 303, await response.text()
    response = await portal.post(
        "/profil/ajouter", {"rubrique": "allergy", "libelle": "  "}, csrf_from="/profil"
    )
    assert response.status == 400
    assert "Allergie ou intolérance : ce champ est obligatoire" in unescape(await response.text())
    _response, html = await portal.page("/profil")
    assert all(label in unescape(html) for _c, label, _d, _w in ITEMS)

    response = await portal.client.get("/profil/resume.pdf")
    assert response.status == 200 and response.content_type == "application/pdf"
    data = await response.read()
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Résumé de mon profil médical" in text
    assert f"Marie Durand · INS {INS}" in text
    for title in (
        "Allergies",
        "Antécédents médicaux et chirurgicaux",
        "Antécédents familiaux",
        "Vaccinations",
        "Traitements en cours",
    ):
        assert title in text
    assert "• Pénicilline (2019)" in text and "Urticaire et œdème" in text
    assert "• Lévothyroxine 75 µg" in text and "1 comprimé le matin" in text
    assert "non vérifiées par un professionnel de santé" in text
    metadata = reader.xmp_metadata
    assert metadata is not None
    xmp = metadata.stream.get_data().decode()
    assert (
        "<pdfaid:part>2</pdfaid:part>" in xmp
        and "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    )
    assert "/OutputIntents" in str(reader.trailer["/Root"].keys())

    async with agenda_hub.db.read() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.patient_id == agenda_hub.ids[INS],
                    AuditEvent.action.like("profile.%"),
                )
            )
        ).all()
    assert list(actions) == ["profile.item_added"] * len(ITEMS)


async def test_removing_an_item_and_another_patients_item(
    agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await portal.login(INS, PASSWORD)
    await portal.post(
        "/profil/ajouter", {"rubrique": "allergy", "libelle": "Arachide"}, csrf_from="/profil"
    )
    from mss.profile.models import ProfileItem

    async with agenda_hub.db.read() as session:
        [item] = (await session.scalars(select(ProfileItem))).all()
    response = await portal.post(f"/profil/{item.id + 1}/supprimer", {}, csrf_from="/profil")
    assert response.status == 404
    response = await portal.post(f"/profil/{item.id}/supprimer", {}, csrf_from="/profil")
    assert response.status == 303
    _response, html = await portal.page("/profil")
    assert "Arachide" not in html
