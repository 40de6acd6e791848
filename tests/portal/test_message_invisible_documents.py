"""A message carrying a DMP document hidden from its reader: its package and PDF are neither
listed nor
served until a professional reveals the document; the professional's text stays readable.

Messages take the gateway's path (signed with the dev PKI, ``Gateway.submit``), the ``dmp.file`` job
files their package, and the pages are read over HTTPS as the patient or a guardian reads them.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import or_, select

from dmp_bridge import filing
from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_dmp_opposition, set_treating_doctor
from dmp_bridge.documents import reveal_to_patient
from dmp_bridge.models import DmpDocument
from mss.audit import AuditEvent
from mss.directory.models import Patient, Professional
from mss.directory.store import find_patient_mailbox
from mss.jobs import JobRunner
from mss.policy.consent import ViewerKind
from mss.policy.message_attachments import AttachmentFacts, decide_withheld_attachments
from mss.services import Services
from portal.messages import package_facts
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_guardianship, add_patient
from tests.portal.messaging import (
    DOCTOR,
    DOCTOR_RPPS,
    PDF,
    Attach,
    Mail,
    patient_address,
    setup_mail,
)
from tests.xdm_factory import HL7_CONF, INS, TRE_A07, DocSpec, XdmSpec, make_xdm

GUARDIAN_INS = "201751234560554"
TITLE = "Sérologie VIH"
TEXT = "Bonjour, voici le résultat dont nous parlerons en consultation."
WITHHELD = "Certains documents de ce message ne sont pas encore disponibles dans votre espace."
MISSING = "Cette pièce jointe n'existe pas dans cet espace, ou vous n'y avez pas accès."


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    return await setup_mail(hub, dev_pki)


@pytest.fixture
def runner(hub: Hub) -> JobRunner:
    jobs = JobRunner(hub.db, services=Services(hub.settings))
    filing.register_jobs(jobs)
    return jobs


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _package(*flags: str) -> bytes:
    confidentiality = (("N", HL7_CONF), *((flag, TRE_A07) for flag in flags))
    return make_xdm(XdmSpec(documents=[DocSpec(confidentiality=confidentiality, title=TITLE)]))


async def _send(mail: Mail, package: bytes, to: str = patient_address(INS)) -> str:
    return await mail.send(
        DOCTOR,
        to,
        "Votre document",
        TEXT + "\n",
        attachments=[
            Attach("IHE_XDM.zip", "application/zip", package),
            Attach("CR.pdf", "application/pdf", PDF),
        ],
    )


async def _parts(hub: Hub, entry: int) -> dict[str, str]:
    """The attachments the page lists: file name -> download path."""
    response, html = await hub.page(f"/messages/{entry}")
    assert response.status == 200
    return {
        name: path
        for path, name in re.findall(
            r'href="(/messages/\d+/pieces/[\d.]+)" download>'
            r"Télécharger « ([^»]+) »",
            unescape(html),
        )
    }


async def _assert_withheld(hub: Hub, entry: int) -> None:
    response, html = await hub.page(f"/messages/{entry}")
    text = _text(html)
    assert response.status == 200 and TEXT in text and WITHHELD in text
    for leak in (
        TITLE,
        "IHE_XDM",
        "CR.pdf",
        "Télécharger",
        "INVISIBLE",
        "11488-4",
        "application/pdf",
    ):
        assert leak not in text, leak
    _missing, missing_html = await hub.page(f"/messages/{entry}/pieces/9")
    for part in ("2", "3"):  # 1.1 text, 1.2 package, 1.3 PDF: the signed entity is part 1
        response, body = await hub.page(f"/messages/{entry}/pieces/1.{part}")
        assert response.status == 404 and MISSING in _text(body)
        assert _text(body) == _text(missing_html)
    # "Mon dossier" neither offers the withheld PDF nor files it from the message.
    _response, html = await hub.page("/dossier/ajouter")
    assert f"/dossier/depuis-message/{entry}/" not in html and "CR.pdf" not in _text(html)
    response, _body = await hub.page(f"/dossier/depuis-message/{entry}/1.3")
    assert response.status == 404


async def _patient(hub: Hub, patient_id: int) -> Patient:
    async with hub.db.read() as session:
        patient = await session.get(Patient, patient_id)
        assert patient is not None
        return patient


async def _doctor_as_treating(hub: Hub, patient_id: int) -> Professional:
    async with hub.db.write() as session:
        patient = await session.get(Patient, patient_id)
        doctor = (
            await session.scalars(
                select(Professional).where(Professional.id_nat == f"8{DOCTOR_RPPS}")
            )
        ).one()
        assert patient is not None
        await set_treating_doctor(session, Viewer.for_patient(patient), patient, doctor)
        return doctor


async def _only_document(hub: Hub) -> DmpDocument:
    async with hub.db.read() as session:
        [document] = (await session.scalars(select(DmpDocument))).all()
        return document


async def _events_seen_by(hub: Hub, *patient_ids: int) -> str:
    async with hub.db.read() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(
                    or_(
                        AuditEvent.patient_id.in_(patient_ids),
                        AuditEvent.actor.in_([(await _patient(hub, i)).ins for i in patient_ids]),
                    )
                )
            )
        ).all()
    return " ".join(f"{e.action} {e.target} {e.detail}" for e in events)


async def test_a_document_invisible_to_the_patient_is_withheld_until_revealed(
    hub: Hub, mail: Mail, runner: JobRunner
) -> None:
    patient = await add_patient(hub.db, INS, "NESSI", "Ruth")
    doctor = await _doctor_as_treating(hub, patient.id)
    message_id = await _send(mail, _package("INVISIBLE_PATIENT"))
    entry = await mail.entry_id(patient_address(INS), message_id)
    await hub.login(INS)
    await _assert_withheld(hub, entry)  # before the filing job ran: the package is read
    await runner.drain()
    document = await _only_document(hub)
    assert document.invisible_to_patient and document.title == TITLE
    await _assert_withheld(hub, entry)  # filed: the record answers
    _response, html = await hub.page("/historique")
    assert TITLE not in unescape(html)
    assert TITLE not in await _events_seen_by(hub, patient.id)
    async with hub.db.write() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        await reveal_to_patient(session, Viewer.for_professional(doctor), row, document.id)
    parts = await _parts(hub, entry)
    assert parts == {
        "IHE_XDM.zip": f"/messages/{entry}/pieces/1.2",
        "CR.pdf": f"/messages/{entry}/pieces/1.3",
    }
    _response, html = await hub.page(f"/messages/{entry}")
    assert WITHHELD not in _text(html)
    response = await hub.client.get(parts["CR.pdf"])
    assert response.status == 200 and await response.read() == PDF
    _response, html = await hub.page("/dossier/ajouter")
    assert f"/dossier/depuis-message/{entry}/1.3" in html
    response, _body = await hub.page(f"/dossier/depuis-message/{entry}/1.3")
    assert response.status == 200
    response = await hub.client.get(parts["IHE_XDM.zip"])
    assert response.status == 200 and (await response.read()).startswith(b"PK")


async def test_the_filed_record_answers_without_reading_the_package(
    hub: Hub, mail: Mail, runner: JobRunner
) -> None:
    patient = await add_patient(hub.db, INS, "NESSI", "Ruth")
    message_id = await _send(mail, _package("INVISIBLE_PATIENT"))
    await runner.drain()
    [stored] = [
        m for m in await mail.stored(patient_address(INS)) if m.message_id_header == message_id
    ]

    facts = await package_facts(
        hub.db,
        patient_id=patient.id,
        mailbox_id=await _mailbox_id(hub, patient.id),
        message_id=stored.id,
        packages=_unread,
    )
    [document] = facts.documents
    assert (
        document.record is not None
        and document.record.invisible_to_patient
        and not facts.unreadable
    )


def _unread() -> list[bytes]:
    raise AssertionError("the package was read although the record knew every document")


async def _mailbox_id(hub: Hub, patient_id: int) -> int:
    async with hub.db.read() as session:
        mailbox = await find_patient_mailbox(session, patient_id)
        assert mailbox is not None
        return mailbox.id


async def test_a_package_the_record_refused_is_still_withheld(
    hub: Hub, mail: Mail, runner: JobRunner
) -> None:
    patient = await add_patient(hub.db, INS, "NESSI", "Ruth")
    async with hub.db.write() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        await set_dmp_opposition(session, Viewer.for_patient(row), row, True)
    message_id = await _send(mail, _package("INVISIBLE_PATIENT"))
    await runner.drain()
    async with hub.db.read() as session:
        assert (await session.scalars(select(DmpDocument))).all() == []  # 902: nothing filed
    await hub.login(INS)
    await _assert_withheld(hub, await mail.entry_id(patient_address(INS), message_id))


async def test_a_document_invisible_to_guardians_is_withheld_from_the_guardian(
    hub: Hub, mail: Mail, runner: JobRunner
) -> None:
    guardian = await add_patient(hub.db, GUARDIAN_INS, "NESSI", "Claire")
    minor = await add_patient(hub.db, INS, "NESSI", "Ruth", phone=None, password=False)
    await add_guardianship(hub.db, guardian, minor)
    message_id = await _send(mail, _package("INVISIBLE_REPRESENTANTS_LEGAUX"))
    await runner.drain()
    document = await _only_document(hub)
    assert document.invisible_to_legal_representatives and not document.invisible_to_patient
    entry = await mail.entry_id(patient_address(INS), message_id)
    await hub.login(GUARDIAN_INS)
    response = await hub.post("/espace", {"patient": str(minor.id)}, csrf_from="/")
    assert response.status == 303
    await _assert_withheld(hub, entry)
    assert TITLE not in await _events_seen_by(hub, guardian.id, minor.id)
    # The minor does not sign in; the policy, on the same facts, shows them everything.
    [(folder_entry, stored)] = [
        (e, m)
        for e, m in await mail.entries(patient_address(INS))
        if m.message_id_header == message_id
    ]
    facts = await package_facts(
        hub.db,
        patient_id=minor.id,
        mailbox_id=await _mailbox_id(hub, minor.id),
        message_id=stored.id,
        packages=_unread,
    )
    listed = [
        AttachmentFacts("1.2", "IHE_XDM.zip", "application/zip"),
        AttachmentFacts("1.3", "CR.pdf", "application/pdf"),
    ]
    assert not decide_withheld_attachments(ViewerKind.PATIENT, listed, facts)
    assert set(decide_withheld_attachments(ViewerKind.GUARDIAN, listed, facts).parts) == {
        "1.2",
        "1.3",
    }
    assert folder_entry.id == entry


async def test_a_normal_package_and_its_pdf_are_unchanged(
    hub: Hub, mail: Mail, runner: JobRunner
) -> None:
    await add_patient(hub.db, INS, "NESSI", "Ruth")
    package = _package()
    message_id = await _send(mail, package)
    plain_id = await mail.send(
        DOCTOR,
        patient_address(INS),
        "Ordonnance",
        "Bonjour,\n",
        attachments=[Attach("ordonnance.pdf", "application/pdf", PDF)],
    )
    await runner.drain()
    await hub.login(INS)
    entry = await mail.entry_id(patient_address(INS), message_id)
    parts = await _parts(hub, entry)
    assert parts == {
        "IHE_XDM.zip": f"/messages/{entry}/pieces/1.2",
        "CR.pdf": f"/messages/{entry}/pieces/1.3",
    }
    _response, html = await hub.page(f"/messages/{entry}")
    assert WITHHELD not in _text(html) and TEXT in _text(html)
    response = await hub.client.get(parts["IHE_XDM.zip"])
    assert response.status == 200 and await response.read() == package
    response = await hub.client.get(parts["CR.pdf"])
    assert response.status == 200 and await response.read() == PDF
    plain = await _parts(hub, await mail.entry_id(patient_address(INS), plain_id))
    assert list(plain) == ["ordonnance.pdf"]
