"""Reading messages: the list (directory names, unread counts, newest first), a signed message, its
attachments as downloads, sanitised HTML, and the audit of each reading."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from mss.audit import AuditEvent
from mss.crypto import pki
from mss.mailbox.store import deliver
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_patient
from tests.portal.messaging import (
    DOCTOR,
    DOCTOR_RPPS,
    OTHER_DOCTOR,
    PDF,
    PHARMACY,
    Attach,
    Mail,
    patient_address,
    setup_mail,
)

INS = "201751234561148"
PATIENT = patient_address(INS)


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    await add_patient(hub.db, INS, "Roux", "Alice")
    return await setup_mail(hub, dev_pki)


def text_of(html: str) -> str:
    """The visible text of a page, tags removed, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_list_names_professionals_counts_unread_newest_first(hub: Hub, mail: Mail) -> None:
    first = await mail.send(DOCTOR, PATIENT, "Résultats de la prise de sang")
    await mail.send(DOCTOR, PATIENT, "Compte rendu", headers={"In-Reply-To": first})
    await mail.send(OTHER_DOCTOR, PATIENT, "Pansements")
    await hub.login(INS)
    _response, home = await hub.page("/")
    assert "3 messages non lus" in text_of(home) and 'href="/messages"' in home
    response, html = await hub.page("/messages")
    assert response.status == 200
    page = text_of(html)
    assert "3 messages non lus" in page
    # Newest first: Anne Martin's conversation, then Dr Jean Dupont's (two messages, two unread).
    assert page.index("Anne Martin") < page.index("Dr Jean Dupont")
    assert "Infirmier · CHU de Nantes" in page and "Médecin · CHU de Nantes" in page
    assert re.search(
        r"Dr Jean Dupont Médecin · CHU de Nantes Compte rendu .* 2 messages 2 non lus", page
    )
    entry = await mail.entry_id(PATIENT, first)
    await hub.page(f"/messages/{entry}")
    _response, html = await hub.page("/messages")
    assert "2 messages non lus" in text_of(html)
    _response, home = await hub.page("/")
    assert "2 messages non lus" in text_of(home)


async def test_signed_message_shows_its_signer_text_and_attachment(hub: Hub, mail: Mail) -> None:
    message_id = await mail.send(
        DOCTOR,
        PATIENT,
        "Ordonnance",
        "Voici votre ordonnance.\nBonne journée.\n",
        attachments=[Attach("ordonnance été.pdf", "application/pdf", PDF)],
    )
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, message_id)
    response, html = await hub.page(f"/messages/{entry}")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    page = text_of(html)
    assert f"Signé par Dr Jean Dupont, RPPS {DOCTOR_RPPS} ({DOCTOR}), signature vérifiée." in page
    assert "Signature vérifiée" in page and "Médecin · CHU de Nantes" in page
    assert "Voici votre ordonnance.\nBonne journée." in unescape(html)
    link = re.search(r'href="(/messages/\d+/pieces/[0-9.]+)"', html)
    assert link and "Télécharger « ordonnance été.pdf »" in page
    download = await hub.client.get(link.group(1))
    assert download.status == 200 and await download.read() == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"] == (
        'attachment; filename="ordonnance ete.pdf"; '
        "filename*=UTF-8''ordonnance%20%C3%A9t%C3%A9.pdf"
    )
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Cache-Control"] == "no-store"
    ((entry_row, _message),) = await mail.entries(PATIENT)
    assert "\\Seen" in entry_row.flags
    async with hub.db.read() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.actor == INS).order_by(AuditEvent.id)
            )
        ).all()
    assert actions == ["login", "message_read", "message_attachment_read"]
    _response, html = await hub.page("/historique?type=messages")
    assert "Message lu" in html and "Pièce jointe téléchargée" in html and "Message reçu" in html


async def test_unknown_parts_and_the_signature_are_not_served(hub: Hub, mail: Mail) -> None:
    message_id = await mail.send(PHARMACY, PATIENT, "Votre commande", "Elle est prête.\n")
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, message_id)
    _response, html = await hub.page(f"/messages/{entry}")
    assert "Pièces jointes" not in html  # the S/MIME signature part is not offered
    for part in ("1", "2", "1.1", "9", "0", "1..2"):
        response, _html = await hub.page(f"/messages/{entry}/pieces/{part}")
        assert response.status == 404, part


async def test_an_encrypted_message_says_it_arrived_encrypted(hub: Hub, mail: Mail) -> None:
    sealed_for = pki.issue_encryption(hub.settings.pki_dir, PATIENT)
    message_id = await mail.send(
        DOCTOR, PATIENT, "Chiffré", "Confidentiel.\n", encrypt_to=sealed_for.cert
    )
    (stored,) = await mail.stored(PATIENT)
    assert stored.arrived_encrypted and b"Confidentiel." in stored.raw
    await hub.login(INS)
    _response, html = await hub.page(f"/messages/{await mail.entry_id(PATIENT, message_id)}")
    page = text_of(html)
    assert "Signature vérifiée" in page and "Message chiffré : il a voyagé chiffré" in page
    plain = await mail.send(DOCTOR, PATIENT, "En clair", "Bonjour.\n")
    _response, html = await hub.page(f"/messages/{await mail.entry_id(PATIENT, plain)}")
    assert "Message chiffré" not in text_of(html)


async def test_an_unsigned_message_says_so(hub: Hub, mail: Mail) -> None:
    async with hub.db.write() as session:
        mailbox = await _mailbox_id(session, PATIENT)
        entry = await deliver(
            session,
            mailbox,
            b"From: <inconnu@mss.localhost>\r\nSubject: Ancien\r\n"
            b"Message-ID: <old@x>\r\n\r\nTexte ancien.\r\n",
        )
    await hub.login(INS)
    _response, html = await hub.page(f"/messages/{entry.id}")
    page = text_of(html)
    assert "Signature non vérifiée" in page and "Ce message n'est pas signé" in page
    assert "Texte ancien." in page


async def _mailbox_id(session: object, address: str) -> int:
    from mss.directory.store import find_mailbox

    found = await find_mailbox(session, address)  # type: ignore[arg-type]
    assert found is not None
    return found.id


HOSTILE = """<html><head><style>body{background:url(http://127.0.0.1:9/css.png)}</style>
<link rel="stylesheet" href="http://127.0.0.1:9/style.css"><meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/">
<script>window.__pwned = 1</script></head>
<body onload="window.__pwned = 2"><p style="color:red">Bonjour <b>Alice</b>,</p>
<img src="http://127.0.0.1:9/pixel.gif" onerror="window.__pwned = 3" alt="pixel">
<iframe src="http://127.0.0.1:9/frame"></iframe><form action="http://127.0.0.1:9/f"><input name="x"></form>
<p><a href="javascript:window.__pwned=4">cliquez</a> ou <a href="https://exemple.fr/info">en savoir plus</a></p>
<table background="http://127.0.0.1:9/bg.png"><tr><td>Tension</td><td>12/8</td></tr></table>
<svg><image href="http://127.0.0.1:9/svg.png"/></svg><object data="http://127.0.0.1:9/o"></object>
</body></html>"""


async def test_html_mail_is_sanitised(hub: Hub, mail: Mail) -> None:
    message_id = await mail.send(DOCTOR, PATIENT, "HTML", "", html=HOSTILE)
    await hub.login(INS)
    _response, html = await hub.page(f"/messages/{await mail.entry_id(PATIENT, message_id)}")
    body = html.split('aria-label="Contenu du message"', 1)[1].split("</section>", 1)[0]
    for forbidden in (
        "<script",
        "onload",
        "onerror",
        "<img",
        "<iframe",
        "<form",
        "<input",
        "<link",
        "<meta",
        "<style",
        "style=",
        "javascript:",
        "127.0.0.1:9",
        "background",
        "<svg",
        "<object",
    ):
        assert forbidden not in body, forbidden
    assert "<b>Alice</b>" in body and "<td>Tension</td>" in body
    assert '<a href="https://exemple.fr/info" rel="noopener noreferrer nofollow">' in body
    assert "contenus externes de ce message ont été bloqués" in unescape(html)


async def test_plain_text_is_preferred_to_html(hub: Hub, mail: Mail) -> None:
    message_id = await mail.send(
        DOCTOR,
        PATIENT,
        "Deux versions",
        "La version texte.\n",
        html="<p>La version <b>HTML</b>.</p>",
    )
    await hub.login(INS)
    _response, html = await hub.page(f"/messages/{await mail.entry_id(PATIENT, message_id)}")
    assert "La version texte." in html and "version <b>HTML</b>" not in html


async def test_opaque_signed_message_is_unwrapped(hub: Hub, mail: Mail) -> None:
    message_id = await mail.send(
        DOCTOR,
        PATIENT,
        "Signature opaque",
        "Texte signé en opaque.\n",
        attachments=[Attach("bilan.pdf", "application/pdf", PDF)],
        opaque=True,
    )
    ((_entry, stored),) = await mail.entries(PATIENT)
    assert stored.signature_status == "valid" and b"application/pkcs7-mime" in stored.raw
    await hub.login(INS)
    entry = await mail.entry_id(PATIENT, message_id)
    _response, html = await hub.page(f"/messages/{entry}")
    page = text_of(html)
    assert "Texte signé en opaque." in page and "signature vérifiée." in page
    assert "smime.p7m" not in page and "Télécharger « bilan.pdf »" in page
    link = re.search(r'href="(/messages/\d+/pieces/[0-9.]+)"', html)
    assert link
    download = await hub.client.get(link.group(1))
    assert await download.read() == PDF and download.headers["Content-Type"] == "application/pdf"
