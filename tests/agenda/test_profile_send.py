"""The profile summary over the one message path, both sides of the rule: the portal's summary
goes to a professional and opens nothing; a patient's free-text new message, or anything but the
summary under its name, is still refused. And the sharing choice's refusals over HTTP, a
guardian choosing for a minor."""

from __future__ import annotations

from sqlalchemy import select

from mss.agenda.sharing import share_facts
from mss.audit import AuditEvent
from mss.db import utcnow
from mss.directory.facts import mailbox_facts
from mss.directory.models import Guardianship, Patient
from mss.policy import MailboxFacts
from mss.policy.agenda import AgendaSharing
from mss.policy.patient_documents import PROFILE_SUMMARY
from mss.smtp_gateway import Gateway
from portal.compose import Author, Upload, build_message
from tests.agenda.conftest import (
    APP,
    DOCTOR,
    INS,
    OTHER_INS,
    PASSWORD,
    PATIENT,
    PATIENT_PHONE,
    AgendaHub,
    PortalHub,
)
from tests.xdm_factory import PDF

ME = Author(PATIENT, "Marie Durand")


def _message(*, uploads: list[Upload], to: str = DOCTOR, text: str = "Bonjour") -> bytes:
    return build_message(
        ME,
        to,
        "Résumé du profil médical de Marie Durand",
        text,
        "<summary-test@mss.localhost>",
        now=utcnow(),
        uploads=uploads,
    )


async def _gateway(hub: AgendaHub) -> tuple[Gateway, MailboxFacts]:
    async with hub.db.read() as session:
        me = await mailbox_facts(session, PATIENT)
    assert me is not None
    return Gateway(hub.settings, hub.db, hub.services), me


async def test_the_summary_goes_and_opens_no_conversation(agenda_hub: AgendaHub) -> None:
    gateway, me = await _gateway(agenda_hub)
    summary = _message(uploads=[Upload("resume.pdf", "application/pdf", PDF)])
    sent = await gateway.submit(me, [DOCTOR], summary, one_off=PROFILE_SUMMARY)
    assert sent.decision.allowed, sent.decision.sentence
    [stored] = await agenda_hub.stored(DOCTOR)
    assert stored.conversation_id is None


async def test_a_free_text_new_conversation_is_still_refused(agenda_hub: AgendaHub) -> None:
    gateway, me = await _gateway(agenda_hub)
    plain = _message(uploads=[], text="Docteur, pouvez-vous me rappeler ?")
    refused = await gateway.submit(me, [DOCTOR], plain)
    assert (refused.decision.allowed, refused.decision.enhanced_status) == (False, "5.7.1")
    assert "seul le professionnel" in refused.decision.sentence_fr
    # The same free text under the summary's name: no PDF, so not a summary.
    disguised = await gateway.submit(me, [DOCTOR], plain, one_off=PROFILE_SUMMARY)
    assert (disguised.decision.allowed, disguised.decision.reason) == (False, "not_a_summary")
    # A summary with something else attached is not one either.
    extra = _message(
        uploads=[
            Upload("resume.pdf", "application/pdf", PDF),
            Upload("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 64),
        ]
    )
    mixed = await gateway.submit(me, [DOCTOR], extra, one_off=PROFILE_SUMMARY)
    assert mixed.decision.reason == "not_a_summary"
    # Never to an application mailbox, refused at RCPT.
    summary = _message(uploads=[Upload("resume.pdf", "application/pdf", PDF)], to=APP)
    to_app = await gateway.submit(me, [APP], summary, one_off=PROFILE_SUMMARY)
    assert to_app.decision.reason == "not_a_professional"
    assert await agenda_hub.stored(DOCTOR) == [] and await agenda_hub.stored(APP) == []


async def test_sending_refusals_over_http(agenda_hub: AgendaHub, portal: PortalHub) -> None:
    await portal.login(INS, PASSWORD, phone=PATIENT_PHONE)
    response = await portal.post("/profil/envoyer", {"id_nat": "810000009999"})
    assert response.status == 400
    assert "pas de messagerie de santé ouverte" in await response.text()
    assert await agenda_hub.stored(DOCTOR) == []


async def test_a_guardian_chooses_for_the_minor(agenda_hub: AgendaHub, portal: PortalHub) -> None:
    async with agenda_hub.db.write() as session:
        ids = {p.ins: p.id for p in (await session.scalars(select(Patient))).all()}
        session.add(Guardianship(guardian_id=ids[OTHER_INS], minor_id=ids[INS]))
    await portal.login(OTHER_INS, PASSWORD, phone="+33698765432")
    response = await portal.post("/espace", {"patient": str(ids[INS])}, csrf_from="/")
    assert response.status == 303
    response = await portal.post("/agenda/partage", {"partage": "tout"})
    assert response.status == 400 and "Choisissez qui peut voir" in await response.text()
    response = await portal.post("/agenda/partage", {"partage": "chosen"})
    assert (
        response.status == 400 and "choisissez au moins un professionnel" in await response.text()
    )
    response = await portal.post("/agenda/partage", {"partage": "authorised"})
    assert response.status == 303
    _response, page = await portal.page("/agenda")
    assert "Qui voit l&#39;agenda : les professionnels autorisés" in page
    _response, page = await portal.page("/agenda/partage")
    assert "<h1>Qui voit l&#39;agenda de Marie Durand</h1>" in page
    async with agenda_hub.db.read() as session:
        minor = await session.get(Patient, ids[INS])
        guardian_own = await session.get(Patient, ids[OTHER_INS])
        assert minor is not None and guardian_own is not None
        assert (await share_facts(session, minor)).sharing is AgendaSharing.AUTHORISED
        assert (await share_facts(session, guardian_own)).sharing is AgendaSharing.NONE
        [event] = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "agenda.sharing_changed")
            )
        ).all()
    assert (event.actor_kind, event.patient_id, event.on_behalf_of) == ("guardian", ids[INS], INS)
