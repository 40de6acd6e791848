"""The shared agenda's choice page and the profile summary sent to a professional, in Debian's
Chromium on a phone (390x844)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect
from pypdf import PdfReader
from sqlalchemy import select

from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_authorisation
from mss.agenda.sharing import ProfessionalAppointment, add_professional_appointment, share_facts
from mss.db import utcnow
from mss.directory.models import Patient
from mss.policy.agenda import AgendaShareFacts, AgendaSharing
from mss.profile import store as profile_store
from portal.history import read_history
from tests.agenda.conftest import (
    DOCTOR,
    INS,
    PASSWORD,
    PATIENT,
    PATIENT_PHONE,
    AgendaHub,
    PortalHub,
)
from tests.portal.test_browser import fits_the_phone, go_to, phone_page, shot, sign_in

pytestmark = pytest.mark.browser
DOCTOR_ID_NAT = "810000000001"


@pytest.fixture
async def phone(portal: PortalHub) -> AsyncIterator[Page]:
    async with phone_page(str(portal.client.make_url("/"))) as opened:
        yield opened


async def _patient(hub: AgendaHub) -> Patient:
    async with hub.db.read() as session:
        return (await session.scalars(select(Patient).where(Patient.ins == INS))).one()


async def test_choose_who_sees_the_agenda(
    phone: Page, agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await sign_in(phone, portal, INS, PASSWORD, PATIENT_PHONE)
    await phone.get_by_role("link", name="Agenda", exact=True).click()
    await phone.get_by_role("link", name="Qui voit mon agenda : personne").click()
    await expect(phone.get_by_role("heading", level=1)).to_have_text("Qui voit mon agenda")
    await expect(
        phone.get_by_label("Personne (aucun professionnel ne voit l'agenda)")
    ).to_be_checked()
    await phone.get_by_label("Tous les professionnels autorisés à consulter le dossier").check()
    await phone.get_by_role("button", name="Enregistrer mon choix").click()
    await expect(phone.get_by_role("status")).to_have_text("Votre choix est enregistré.")
    assert (await share_facts_of(agenda_hub)).sharing is AgendaSharing.AUTHORISED

    search = phone.get_by_role("region", name="Choisir un professionnel")
    await search.get_by_label("Nom ou numéro RPPS").fill("dupont")
    await search.get_by_role("button", name="Chercher").click()
    await phone.get_by_role("button", name="Choisir pour voir l'agenda : Jean Dupont").click()
    await expect(phone.get_by_role("status")).to_contain_text(
        "Jean Dupont est ajouté aux professionnels qui voient l'agenda."
    )
    chosen = phone.get_by_role("region", name="Professionnels choisis")
    # Not authorised on the record yet: the page says he will not see the agenda until he is.
    await expect(chosen).to_contain_text("n'est pas autorisé à consulter le dossier")
    await expect(chosen).to_contain_text("Ces choix ne comptent que si")
    facts = await share_facts_of(agenda_hub)
    assert (facts.sharing, facts.chosen) == (AgendaSharing.AUTHORISED, {DOCTOR_ID_NAT})

    patient = await _patient(agenda_hub)
    async with agenda_hub.db.write() as session:
        row = await session.merge(patient)
        await set_authorisation(session, Viewer.for_patient(row), row, DOCTOR_ID_NAT)
    await phone.get_by_label("Seulement les professionnels que je choisis").check()
    await phone.get_by_role("button", name="Enregistrer mon choix").click()
    await expect(phone.get_by_role("status")).to_have_text("Votre choix est enregistré.")
    await expect(chosen).not_to_contain_text("n'est pas autorisé")
    assert (await share_facts_of(agenda_hub)).sharing is AgendaSharing.CHOSEN
    await fits_the_phone(phone)
    await shot(phone, "agenda-partage")

    # The last one chosen cannot go while the agenda is shared with the chosen only.
    await chosen.get_by_role("button", name="Retirer : Jean Dupont").click()
    await expect(phone.get_by_role("alert")).to_contain_text("choisissez au moins un professionnel")
    assert (await share_facts_of(agenda_hub)).chosen == {DOCTOR_ID_NAT}

    # What he adds shows in the agenda with his name.
    start = utcnow().replace(microsecond=0) + dt.timedelta(days=5)
    async with agenda_hub.db.write() as session:
        await add_professional_appointment(
            session,
            agenda_hub.settings,
            await session.merge(patient),
            ProfessionalAppointment(start, start + dt.timedelta(hours=1), "Vaccin, rappel"),
            author_id_nat=DOCTOR_ID_NAT,
            author_name="Jean Dupont",
            author_address=DOCTOR,
            now=utcnow(),
        )
    await phone.get_by_role("link", name="Retour à l'agenda").click()
    upcoming = phone.get_by_role("region", name="Rendez-vous à venir")
    await expect(upcoming).to_contain_text("Vaccin, rappel")
    await expect(upcoming).to_contain_text("Ajouté par Jean Dupont")
    await expect(
        phone.get_by_role("link", name="Qui voit mon agenda : les professionnels choisis")
    ).to_be_visible()
    await fits_the_phone(phone)
    async with agenda_hub.db.read() as session:
        history = await read_history(session, patient.id)
    assert [h.what for h in history[:1]] == ["Choix des professionnels qui voient l'agenda modifié"]


async def share_facts_of(hub: AgendaHub) -> AgendaShareFacts:
    async with hub.db.read() as session:
        return await share_facts(session, await _patient(hub))


async def test_send_the_profile_summary_to_a_professional(
    phone: Page, agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    patient = await _patient(agenda_hub)
    async with agenda_hub.db.write() as session:
        await profile_store.add_item(
            session,
            patient.id,
            category="allergy",
            label="Pénicilline",
            detail="Urticaire",
            when="",
            author_kind="patient",
            author=INS,
            now=utcnow(),
        )
    await sign_in(phone, portal, INS, PASSWORD, PATIENT_PHONE)
    await go_to(phone, "Profil médical")
    await phone.get_by_role("link", name="Envoyer le résumé à un professionnel").click()
    await expect(phone.get_by_role("heading", level=1)).to_have_text(
        "Envoyer mon résumé à un professionnel"
    )
    await phone.get_by_label("Nom ou numéro RPPS").fill("Dupont")
    await phone.get_by_role("button", name="Chercher").click()
    found = phone.get_by_role("list", name="Professionnels trouvés")
    await expect(found).to_contain_text("Jean Dupont")
    await fits_the_phone(phone)
    await shot(phone, "profil-envoyer")
    await found.get_by_role("button", name="Envoyer mon résumé à Jean Dupont").click()
    await expect(phone.get_by_role("status")).to_have_text(
        "Le résumé de votre profil a été envoyé à Jean Dupont."
    )
    [stored] = await agenda_hub.stored(DOCTOR)
    assert stored.conversation_id is None  # a one-off document opens no conversation
    assert (stored.signature_status, stored.signer_address) == ("valid", PATIENT)
    message = email.message_from_bytes(bytes(stored.raw), policy=email.policy.default)
    assert message["Subject"] == "Résumé du profil médical de Marie Durand"
    assert message.get_content_type() == "multipart/signed"  # signed by the hub for the space
    signed_part, signature = message.get_payload()  # type: ignore[misc]
    assert signature.get_content_type() == "application/pkcs7-signature"
    [attachment] = list(signed_part.iter_attachments())
    assert attachment.get_filename() == "resume-profil-medical.pdf"
    text = "\n".join(
        p.extract_text() for p in PdfReader(io.BytesIO(attachment.get_content())).pages
    )
    assert "Pénicilline" in text and "Urticaire" in text
    async with agenda_hub.db.read() as session:
        history = await read_history(session, patient.id)
    assert history[0].what == "Résumé du profil médical envoyé à un professionnel"

    # A search only offers professionals the summary may go to: not the hospital's application.
    await go_to(phone, "Profil médical")
    await phone.get_by_role("link", name="Envoyer le résumé à un professionnel").click()
    await phone.get_by_label("Nom ou numéro RPPS").fill("CHU")
    await phone.get_by_role("button", name="Chercher").click()
    await expect(phone.get_by_text("Aucun professionnel trouvé")).to_be_visible()
