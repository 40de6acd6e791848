"""The profile summary over the one message path, both sides of the rule: the portal's summary
goes to a professional and opens nothing; a patient's free-text new message, or anything but the
summary under its name, is still refused. And the sharing choice's refusals over HTTP, a
guardian choosing for a minor."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import stat

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from mss.agenda.sharing import share_facts
from mss.audit import AuditEvent
from mss.crypto import smime
from mss.crypto.certificates import PATIENT_SPACE_UNIT
from mss.crypto.pki import issue_patient_signing, patient_signing_target, revoke
from mss.crypto.space_signing import SpaceSigners
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


def _signed_by(result: smime.SignatureResult) -> tuple[list[str], str]:
    """The signer certificate's rfc822Name addresses and its organisational unit."""
    cert = result.signer_certificate
    assert cert is not None
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    [unit] = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return san.get_values_for_type(x509.RFC822Name), str(unit.value)


async def test_the_portal_signs_the_summary_for_the_patient(
    agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await portal.login(INS, PASSWORD, phone=PATIENT_PHONE)
    response = await portal.post("/profil/envoyer", {"id_nat": "810000000001"})
    assert response.status == 303, await response.text()
    [stored] = await agenda_hub.stored(DOCTOR)  # in the professional's INBOX
    # The gateway verified it at its content stage: the stored status is its verdict.
    assert (stored.signature_status, stored.signer_address) == ("valid", PATIENT)
    raw = bytes(stored.raw)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/signed"
    assert "smime=pass" in str(message["Authentication-Results"])
    # What the professional's client checks: a trusted chain and signer address = From.
    result = smime.verify(raw, agenda_hub.services.trust_store(), from_address=message["From"])
    assert result.status == "valid", result.reason
    addresses, unit = _signed_by(result)
    assert addresses == [PATIENT] == [message["From"].addresses[0].addr_spec]
    assert unit == PATIENT_SPACE_UNIT
    # The key stays with the hub, owner-only; a second summary reuses the same certificate.
    key = patient_signing_target(agenda_hub.settings.pki_dir, PATIENT).key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    response = await portal.post("/profil/envoyer", {"id_nat": "810000000001"})
    assert response.status == 303
    _first, second = await agenda_hub.stored(DOCTOR)
    again = smime.verify(bytes(second.raw), agenda_hub.services.trust_store(), from_address=PATIENT)
    assert second.signature_status == "valid" and again.signer_serial == result.signer_serial
    # Altered after signing: the professional's verification says so.
    altered = raw.replace(b"Bonjour,", b"Bonsoir,", 1)
    assert altered != raw
    broken = smime.verify(altered, agenda_hub.services.trust_store(), from_address=PATIENT)
    assert broken.status == "tampered"


async def test_a_tampered_or_revoked_summary_at_the_gateway(agenda_hub: AgendaHub) -> None:
    gateway, me = await _gateway(agenda_hub)
    signers = SpaceSigners(agenda_hub.settings.pki_dir)
    summary = _message(uploads=[Upload("resume.pdf", "application/pdf", PDF)])
    signed = signers.sign(summary, PATIENT, "Marie Durand")
    tampered = signed.replace(b"Bonjour", b"Bonsoir", 1)
    assert tampered != signed
    refused = await gateway.submit(me, [DOCTOR], tampered, one_off=PROFILE_SUMMARY)
    assert (refused.decision.allowed, refused.decision.enhanced_status) == (False, "5.7.7")
    assert await agenda_hub.stored(DOCTOR) == []
    sent = await gateway.submit(me, [DOCTOR], signed, one_off=PROFILE_SUMMARY)
    assert sent.decision.allowed, sent.decision.sentence
    [stored] = await agenda_hub.stored(DOCTOR)
    assert (stored.signature_status, stored.signer_address) == ("valid", PATIENT)
    # A revoked certificate is replaced before the next signature, never used again.
    old = signers.identity(PATIENT, "Marie Durand").cert
    revoke(agenda_hub.settings.pki_dir, old.serial_number)
    new = signers.identity(PATIENT, "Marie Durand").cert  # the same process, kept identity
    assert new.serial_number != old.serial_number
    # So is one past its end, and one that names the space otherwise.
    now = utcnow()
    issue_patient_signing(
        agenda_hub.settings.pki_dir,
        PATIENT,
        common_name="Marie Durand",
        not_before=now - dt.timedelta(days=400),
        not_after=now - dt.timedelta(days=1),
    )
    fresh = SpaceSigners(agenda_hub.settings.pki_dir).identity(PATIENT, "Marie Durand").cert
    assert fresh.not_valid_after_utc > now + dt.timedelta(days=365)
    renamed = SpaceSigners(agenda_hub.settings.pki_dir).identity(PATIENT, "Marie Martin").cert
    [name] = renamed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert name.value == "Marie Martin" and renamed.serial_number != fresh.serial_number


async def test_without_the_hub_pki_nothing_is_sent(
    agenda_hub: AgendaHub, portal: PortalHub
) -> None:
    await portal.login(INS, PASSWORD, phone=PATIENT_PHONE)
    intermediate = agenda_hub.settings.pki_dir / "intermediate-ca.key"
    intermediate.rename(intermediate.with_suffix(".away"))
    response = await portal.post("/profil/envoyer", {"id_nat": "810000000001"})
    assert response.status == 503
    assert "ne peut pas être signé par le service" in await response.text()
    assert await agenda_hub.stored(DOCTOR) == []


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
