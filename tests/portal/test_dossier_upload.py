"""The patient adds a document of their own: a PDF or an image, titled and typed; refusals in
French."""

from __future__ import annotations

import re
from html import unescape

import aiohttp
from sqlalchemy import func, select

from dmp_bridge.models import DmpDocument
from mss.policy.patient_dossier import MAX_PATIENT_DOCUMENT, decide_file
from tests.portal.conftest import Hub, add_guardianship, add_patient
from tests.xdm_factory import PDF

CLAIRE, PARENT, CHILD = "201751234560554", "201751234566195", "101751234560606"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


async def _upload(
    hub: Hub,
    content: bytes | None,
    filename: str = "ordonnance.pdf",
    content_type: str = "application/pdf",
    title: str = "Ordonnance du Dr Martin",
    kind: str = "ordonnance",
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("csrf", await hub.csrf("/dossier/ajouter"))
    if content is not None:
        form.add_field("fichier", content, filename=filename, content_type=content_type)
    form.add_field("titre", title)
    form.add_field("type", kind)
    return await hub.client.post("/dossier/ajouter", data=form, allow_redirects=False)


async def _count(hub: Hub) -> int:
    async with hub.db.read() as session:
        return (await session.execute(select(func.count()).select_from(DmpDocument))).scalar_one()


async def test_a_pdf_is_added_and_downloads_as_sent(hub: Hub) -> None:
    await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    await hub.login(CLAIRE)
    _response, html = await hub.page("/dossier/ajouter")
    assert 'enctype="multipart/form-data"' in html and "10 Mo au plus" in unescape(html)
    response = await _upload(hub, PDF)
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith("/dossier/documents/") and location.endswith("?fait=ajoute")
    _response, html = await hub.page(location)
    text = unescape(html)
    assert "Le document est ajouté à votre dossier." in text
    assert "Claire Martin, depuis l'espace patient" in text and "Ordonnance" in text
    document_path = location.split("?")[0]
    response = await hub.client.get(f"{document_path}/pdf")
    assert response.content_type == "application/pdf" and await response.read() == PDF
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="Ordonnance-du-Dr-Martin.pdf"'
    )
    async with hub.db.read() as session:
        row = (await session.scalars(select(DmpDocument))).one()
    assert (row.author_id_nat, row.type_code, row.type_label, row.mime_type, row.source) == (
        None,
        "57833-6",
        "Ordonnance",
        "application/pdf",
        "portal",
    )
    _response, html = await hub.page("/historique")
    assert "Document ajouté au dossier (Ordonnance du Dr Martin)" in " ".join(
        unescape(re.sub(r"<[^>]+>", " ", html)).split()
    )


async def test_an_image_is_added_and_downloads_with_its_type(hub: Hub) -> None:
    await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    await hub.login(CLAIRE)
    response = await _upload(
        hub, PNG, "carnet.png", "image/png", "Carnet de vaccination", "vaccination"
    )
    assert response.status == 303
    document_path = response.headers["Location"].split("?")[0]
    _response, html = await hub.page(document_path)
    assert "Télécharger le fichier" in html and "Télécharger le PDF" not in html
    response = await hub.client.get(f"{document_path}/fichier")
    assert response.content_type == "image/png" and await response.read() == PNG
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="Carnet-de-vaccination.png"'
    )
    _response, html = await hub.page("/dossier?type=11369-6")
    assert "Carnet de vaccination" in unescape(html)


async def test_refusals_say_why_in_french_and_file_nothing(hub: Hub) -> None:
    await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    await hub.login(CLAIRE)
    cases = [
        (
            {
                "content": b"MZ\x90\x00",
                "filename": "virus.exe",
                "content_type": "application/x-msdownload",
            },
            415,
            "Ce type de fichier n'est pas accepté : seuls les documents PDF et les images "
            "JPEG ou PNG",
        ),
        ({"content": b"<html>ordonnance</html>"}, 415, "ce n'est pas un vrai PDF"),
        ({"content": JPEG, "filename": "photo.pdf"}, 415, "ce n'est pas un vrai PDF"),
        (
            {"content": PDF, "filename": "scan.png", "content_type": "image/png"},
            415,
            "ce n'est pas une vraie image PNG",
        ),
        (
            {"content": PDF, "content_type": "text/html"},
            415,
            "Ce type de fichier n'est pas accepté",
        ),
        ({"content": b"", "filename": "vide.pdf"}, 400, "Le fichier choisi est vide"),
        (
            {"content": b"%PDF-" + b"0" * MAX_PATIENT_DOCUMENT},
            413,
            "dépasse la taille maximale de 10 Mo",
        ),
        ({"content": None}, 400, "Choisissez le fichier à ajouter."),
        ({"content": PDF, "title": "  "}, 400, "Donnez un titre au document"),
        (
            {"content": PDF, "title": "x" * 201},
            400,
            "Le titre est trop long : 200 caractères au plus.",
        ),
        ({"content": PDF, "kind": "radio"}, 400, "Choisissez le type du document dans la liste."),
    ]
    for options, status, sentence in cases:
        response = await _upload(hub, **options)  # type: ignore[arg-type]
        html = unescape(await response.text())
        assert response.status == status, (options.get("filename"), html[-800:])
        assert sentence in html, options.get("filename")
        assert 'role="alert"' in html
    response = await _upload(hub, b"not a pdf", title="Garder ce titre", kind="biologie")
    html = unescape(await response.text())
    assert 'value="Garder ce titre"' in html and '<option value="biologie" selected>' in html
    assert await _count(hub) == 0


async def test_a_guardian_adds_a_document_to_the_minors_record(hub: Hub) -> None:
    parent = await add_patient(hub.db, PARENT, "Leroy", "Sophie")
    child = await add_patient(hub.db, CHILD, "Leroy", "Léo", phone=None, password=False)
    await add_guardianship(hub.db, parent, child)
    await hub.login(PARENT)
    await hub.post("/espace", {"patient": str(child.id)}, csrf_from="/")
    response = await _upload(hub, JPEG, "ordonnance.jpg", "image/jpeg")
    assert response.status == 303
    async with hub.db.read() as session:
        row = (await session.scalars(select(DmpDocument))).one()
    assert (row.patient_id, row.author_name, row.mime_type) == (
        child.id,
        "Sophie Leroy",
        "image/jpeg",
    )


def test_the_file_decision_trusts_the_bytes_not_the_name() -> None:
    assert decide_file("scan", "application/octet-stream", 70, PNG).mime_type == "image/png"
    assert decide_file("photo.JPG", "", 70, JPEG).mime_type == "image/jpeg"
    assert decide_file("ordonnance.pdf", "application/pdf; name=x", 70, PDF[:16]).allowed
    assert not decide_file("ordonnance.pdf.html", "text/html", 70, PDF[:16])
    assert not decide_file("ordonnance.docx", "application/octet-stream", 70, PDF[:16])
    assert decide_file("a.pdf", "application/pdf", MAX_PATIENT_DOCUMENT + 1, PDF[:16]).status == 413
