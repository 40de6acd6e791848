"""The one conversation a patient may open: with a pharmacy, carrying a photo or PDF of a
prescription whose type and size the attachment policy checks; any other recipient is refused by
the professional-initiates rule with its own sentence."""

from __future__ import annotations

import email
import email.policy
from html import unescape

import aiohttp
import pytest

from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import DOCTOR, PDF, PHARMACY, PNG, Mail, patient_address, setup_mail

INS = "201751234561148"
PATIENT = patient_address(INS)


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    await add_patient(hub.db, INS, "Roux", "Alice")
    return await setup_mail(hub, dev_pki)


async def send(
    hub: Hub,
    to: str,
    files: list[tuple[str, str, bytes]],
    subject: str = "Ordonnance",
    text: str = "Bonjour, pouvez-vous préparer ceci ?",
) -> tuple[int, str, str]:
    """POST the new-message form as a browser would (multipart/form-data, with the CSRF token)."""
    form = aiohttp.FormData()
    form.add_field("csrf", await hub.csrf("/messages/nouveau"))
    form.add_field("pharmacie", to)
    form.add_field("objet", subject)
    form.add_field("texte", text)
    for name, content_type, data in files:
        form.add_field("fichier", data, filename=name, content_type=content_type)
    response = await hub.client.post("/messages/nouveau", data=form, allow_redirects=False)
    return response.status, response.headers.get("Location", ""), unescape(await response.text())


async def test_prescription_to_a_pharmacy_opens_a_conversation(hub: Hub, mail: Mail) -> None:
    await hub.login(INS)
    _response, html = await hub.page("/messages/nouveau")
    assert f'value="{PHARMACY}"' in html and DOCTOR not in html  # only the pharmacies are offered
    assert (
        'enctype="multipart/form-data"' in html
        and 'accept="image/jpeg,image/png,application/pdf"' in html
    )
    status, location, _html = await send(
        hub, PHARMACY, [("ordonnance.pdf", "application/pdf", PDF), ("verso.png", "image/png", PNG)]
    )
    assert status == 303 and location.startswith("/messages/conversation/")
    (received,) = await mail.stored(PHARMACY)
    assert received.conversation_id is not None and location.endswith(
        f"/{received.conversation_id}?fait=envoye"
    )
    parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
    assert parsed["Subject"] == "Ordonnance" and parsed["From"].addresses[0].addr_spec == PATIENT
    files = [
        (part.get_filename(), part.get_content_type(), part.get_content())
        for part in parsed.iter_attachments()
    ]
    assert files == [("ordonnance.pdf", "application/pdf", PDF), ("verso.png", "image/png", PNG)]
    _response, html = await hub.page(location)
    assert "Votre message a été envoyé." in unescape(html) and "Pharmacie Centrale" in html
    # The pharmacy answers in that conversation; the patient may answer back.
    answer = await mail.send(
        PHARMACY,
        PATIENT,
        "Re: Ordonnance",
        "Prête demain.\n",
        headers={"In-Reply-To": received.message_id_header},
    )
    entry = await mail.entry_id(PATIENT, answer)
    response = await hub.post(
        f"/messages/{entry}/repondre", {"texte": "Merci !"}, csrf_from=f"/messages/{entry}"
    )
    assert response.status == 303
    assert [m.subject for m in await mail.stored(PHARMACY)] == ["Ordonnance", "Re: Ordonnance"]
    _response, html = await hub.page("/historique?type=messages")
    assert unescape(html).count("Message envoyé") == 2


@pytest.mark.parametrize(
    ("name", "content_type", "data", "sentence"),
    [
        (
            "virus.pdf",
            "application/pdf",
            b"MZ\x90\x00 not a pdf",
            "Seule une photo (JPEG ou PNG) ou un document PDF",
        ),
        ("photo.png", "image/png", PDF, "ne correspond pas à son type"),
        ("vide.pdf", "application/pdf", b"", "Le fichier joint est vide."),
        (
            "grand.pdf",
            "application/pdf",
            PDF + b"0" * (10 * 1024 * 1024),
            "Le fichier joint dépasse 10 Mo",
        ),
    ],
)
async def test_attachment_type_and_size_are_checked(
    hub: Hub, mail: Mail, name: str, content_type: str, data: bytes, sentence: str
) -> None:
    await hub.login(INS)
    status, _location, html = await send(hub, PHARMACY, [(name, content_type, data)])
    assert status == 400 and f"« {name} » :" in html and sentence in html
    assert (
        'value="Bonjour, pouvez-vous' not in html and "Bonjour, pouvez-vous préparer ceci ?" in html
    )
    assert await mail.stored(PHARMACY) == []


async def test_a_file_is_required(hub: Hub, mail: Mail) -> None:
    await hub.login(INS)
    status, _location, html = await send(hub, PHARMACY, [])
    assert status == 400 and "Joignez la photo ou le PDF de votre ordonnance." in html


async def test_a_doctor_cannot_be_written_to_first(hub: Hub, mail: Mail) -> None:
    await hub.login(INS)
    status, _location, html = await send(hub, DOCTOR, [("ordonnance.pdf", "application/pdf", PDF)])
    assert status == 403
    assert (
        f"Un patient ne peut pas ouvrir de conversation avec <{DOCTOR}> : seul le "
        f"professionnel le peut" in html
    )
    status, _location, html = await send(hub, PATIENT, [("ordonnance.pdf", "application/pdf", PDF)])
    assert status == 403 and "Un patient ne peut pas écrire à un autre patient" in html
    assert await mail.stored(DOCTOR) == [] and await mail.stored(PATIENT) == []


async def test_without_csrf_token_nothing_is_sent(hub: Hub, mail: Mail) -> None:
    await hub.login(INS)
    form = aiohttp.FormData()
    form.add_field("pharmacie", PHARMACY)
    form.add_field("fichier", PDF, filename="o.pdf", content_type="application/pdf")
    response = await hub.client.post("/messages/nouveau", data=form, allow_redirects=False)
    assert response.status == 403 and "jeton de sécurité" in unescape(await response.text())
    assert await mail.stored(PHARMACY) == []
