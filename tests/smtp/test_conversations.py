"""The professional-initiates matrix, end to end: professionals over SMTP, patients via the portal
path.

Patients have no SMTP login (portal only), so their messages go through
``Gateway.submit``, the same stages and policy the SMTP handler uses.
"""

from __future__ import annotations

from sqlalchemy import select

from mss.conversations import Conversation, ConversationState
from mss.directory.facts import mailbox_facts
from mss.smtp_gateway import Gateway
from tests.smtp.conftest import (
    DOCTOR,
    OTHER_DOCTOR,
    PATIENT,
    PHARMACY,
    SERVICE,
    Hub,
    message,
    signed,
)


async def professional_writes(hub: Hub, sender: str, subject: str, **headers: str) -> bytes:
    identity = hub.pki.issue_smime(sender)
    raw = signed(identity, sender, PATIENT, subject=subject, **headers)
    client = await hub.login_client(sender)
    errors, _ = await client.sendmail(sender, [PATIENT], raw)
    await client.quit()
    assert errors == {}
    return raw


async def patient_writes(hub: Hub, to: str, raw: bytes) -> tuple[int, str]:
    gateway = Gateway(hub.settings, hub.db, hub.services)
    async with hub.db.read() as session:
        patient = await mailbox_facts(session, PATIENT)
    assert patient is not None
    outcome = await gateway.submit(patient, [to], raw)
    return outcome.decision.smtp_code, outcome.decision.sentence


def reply_to(message_id: str, to: str, subject: str = "Re: Résultats") -> bytes:
    return message(PATIENT, to, subject=subject, In_Reply_To=message_id, References=message_id)


async def last_message_id(hub: Hub) -> str:
    return (await hub.stored(PATIENT))[-1].message_id_header


async def test_patient_reply_inside_open_conversation_is_accepted(hub: Hub) -> None:
    await professional_writes(hub, DOCTOR, "Résultats")
    code, _ = await patient_writes(hub, DOCTOR, reply_to(await last_message_id(hub), DOCTOR))
    assert code == 250
    assert [m.subject for m in await hub.stored(DOCTOR)] == ["Re: Résultats"]
    assert [m.subject for m in await hub.stored(PATIENT, "Sent")] == ["Re: Résultats"]


async def test_patient_cannot_start_a_conversation(hub: Hub) -> None:
    code, sentence = await patient_writes(hub, DOCTOR, message(PATIENT, DOCTOR, subject="Bonjour"))
    assert (code, sentence) == (
        550,
        (f"A patient cannot start a conversation with <{DOCTOR}>: only the professional can"),
    )
    assert await hub.stored(DOCTOR) == []


async def test_patient_message_without_references_is_refused(hub: Hub) -> None:
    await professional_writes(hub, DOCTOR, "Résultats")
    code, sentence = await patient_writes(hub, DOCTOR, message(PATIENT, DOCTOR, subject="Question"))
    assert code == 550 and "may only reply to a message of an open conversation" in sentence


async def test_patient_reply_to_another_professional_is_refused(hub: Hub) -> None:
    await professional_writes(hub, DOCTOR, "Résultats")
    first = await last_message_id(hub)
    await professional_writes(hub, OTHER_DOCTOR, "Rendez-vous")
    code, sentence = await patient_writes(hub, OTHER_DOCTOR, reply_to(first, OTHER_DOCTOR))
    assert code == 550 and "another professional" in sentence
    code, _ = await patient_writes(hub, SERVICE, reply_to(first, SERVICE))
    assert code == 550


async def test_patient_reply_after_fin_is_refused(hub: Hub) -> None:
    await professional_writes(hub, DOCTOR, "Résultats")
    opened = await last_message_id(hub)
    await professional_writes(hub, DOCTOR, "[FIN] Résultats")
    code, sentence = await patient_writes(hub, DOCTOR, reply_to(opened, DOCTOR))
    assert (code, sentence) == (
        550,
        (
            f"The conversation with <{DOCTOR}> was closed by the professional; "
            "the patient can no longer reply"
        ),
    )
    async with hub.db.read() as session:
        states = (await session.scalars(select(Conversation.state))).all()
    assert states == [ConversationState.CLOSED]


async def test_x_mss_mes_fin_closes_too(hub: Hub) -> None:
    await professional_writes(hub, DOCTOR, "Résultats")
    opened = await last_message_id(hub)
    await professional_writes(hub, DOCTOR, "Merci", X_MSS_MES="FIN")
    code, _ = await patient_writes(hub, DOCTOR, reply_to(opened, DOCTOR))
    assert code == 550


async def test_pharmacy_exception(hub: Hub) -> None:
    code, _ = await patient_writes(hub, PHARMACY, message(PATIENT, PHARMACY, subject="Ordonnance"))
    assert code == 250
    assert [m.subject for m in await hub.stored(PHARMACY)] == ["Ordonnance"]
    async with hub.db.read() as session:
        conversation = (await session.scalars(select(Conversation))).one()
    assert conversation.professional_mailbox_id == hub.ids[PHARMACY]


async def test_patient_is_notified_of_a_new_message_and_a_professional_is_not(hub: Hub) -> None:
    """One notice per channel the patient has, without content; nothing for the patient's own
    reply."""
    from mss.directory.models import Patient
    from mss.jobs import Job
    from mss.notify import MESSAGES_LINK

    async with hub.db.write() as session:
        patient = (
            await session.scalars(select(Patient).where(Patient.ins == PATIENT.split("@")[0]))
        ).one()
        patient.email, patient.phone = "patient@example.org", "+33600000001"
    await professional_writes(hub, DOCTOR, "Résultats")
    await professional_writes(hub, DOCTOR, "Résultats 2")
    code, _ = await patient_writes(hub, DOCTOR, reply_to(await last_message_id(hub), DOCTOR))
    assert code == 250
    async with hub.db.read() as session:
        jobs = list(
            await session.scalars(select(Job).where(Job.kind == "notify.patient").order_by(Job.id))
        )
    assert [(j.payload["kind"], j.payload["channel"]) for j in jobs] == [
        ("new_message", "email"),
        ("new_message", "sms"),
    ] * 2
    assert {(j.payload["patient_id"], j.payload["link"]) for j in jobs} == {
        (patient.id, MESSAGES_LINK)
    }
