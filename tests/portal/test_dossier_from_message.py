""" "Ajouter à mon dossier" for a PDF attachment of a received message: listed on the add page,
filed once
with the message it came from; nobody files another patient's attachment by changing an id."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from dmp_bridge.models import DmpDocument
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, PDF, PNG, Attach, Mail, patient_address, setup_mail

ALICE, BRUNO = "201751234561148", "101751234561297"


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    return await setup_mail(hub, dev_pki)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def _send(mail: Mail, ins: str) -> str:
    return await mail.send(
        DOCTOR,
        patient_address(ins),
        "Votre compte rendu",
        "Bonjour,\n",
        attachments=[
            Attach("compte-rendu.pdf", "application/pdf", PDF),
            Attach("radio.png", "image/png", PNG),
        ],
    )


async def _documents(hub: Hub) -> list[DmpDocument]:
    async with hub.db.read() as session:
        return list((await session.scalars(select(DmpDocument))).all())


async def test_a_received_pdf_is_added_to_the_record_once(hub: Hub, mail: Mail) -> None:
    await add_patient(hub.db, ALICE, "Roux", "Alice")
    message_id = await _send(mail, ALICE)
    entry = await mail.entry_id(patient_address(ALICE), message_id)
    await hub.login(ALICE)
    _response, html = await hub.page("/dossier/ajouter")
    text = _text(html)
    assert "compte-rendu.pdf" in text and "radio.png" not in text
    assert "Message « Votre compte rendu » de Dr Jean Dupont" in text
    link = re.search(r'href="(/dossier/depuis-message/\d+/[\d.]+)"', html)
    assert link is not None and link.group(1).startswith(f"/dossier/depuis-message/{entry}/")
    path = link.group(1)
    _response, html = await hub.page(path)
    assert 'value="compte-rendu"' in html
    response = await hub.post(path, {"titre": "Compte rendu du Dr Dupont", "type": "consultation"})
    assert response.status == 303
    _response, html = await hub.page(response.headers["Location"])
    assert "Le document est ajouté à votre dossier." in _text(html)
    [document] = await _documents(hub)
    assert (document.title, document.type_code, document.mime_type, document.source_message_id) == (
        "Compte rendu du Dr Dupont",
        "11488-4",
        "application/pdf",
        message_id,
    )
    assert document.stored_message_id is not None and document.author_id_nat is None
    response = await hub.client.get(f"/dossier/documents/{document.id}/pdf")
    assert await response.read() == PDF
    response = await hub.post(path, {"titre": "Encore", "type": "autre"})
    assert response.status == 409 and "Cette pièce jointe est déjà dans votre dossier." in _text(
        await response.text()
    )
    assert len(await _documents(hub)) == 1
    png_part = path.rsplit(".", 1)[0] + ".3"
    response, _html = await hub.page(png_part)
    assert response.status == 404
    _response, html = await hub.page("/historique")
    assert "Document ajouté au dossier (Compte rendu du Dr Dupont)" in _text(html)


async def test_nobody_adds_another_patients_attachment(hub: Hub, mail: Mail) -> None:
    await add_patient(hub.db, ALICE, "Roux", "Alice", phone="+33600000001")
    await add_patient(hub.db, BRUNO, "Fabre", "Bruno", phone="+33600000002")
    message_id = await _send(mail, BRUNO)
    entry = await mail.entry_id(patient_address(BRUNO), message_id)
    await hub.login(ALICE)
    _response, html = await hub.page("/dossier/ajouter")
    assert "compte-rendu.pdf" not in html and "Aucun document PDF" in unescape(html)
    for part in ("1.2", "2", "1"):
        path = f"/dossier/depuis-message/{entry}/{part}"
        response, html = await hub.page(path)
        assert response.status == 404 and "compte-rendu" not in html
        response = await hub.post(
            path, {"titre": "Volé", "type": "autre"}, csrf_from="/dossier/ajouter"
        )
        assert response.status == 404
    response, _html = await hub.page("/dossier/depuis-message/abc/1.2")
    assert response.status == 404
    response = await hub.client.post(
        f"/dossier/depuis-message/{entry}/1.2",
        data={"titre": "x", "type": "autre"},
        allow_redirects=False,
    )
    assert response.status == 403  # no CSRF token
    assert await _documents(hub) == []
