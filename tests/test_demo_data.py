"""What ``mss init --demo`` leaves for each demo patient, read back from the stores, and the
refusals the demo's gateway step turns into errors (both engines)."""

from __future__ import annotations

import datetime as dt
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import undefer

from mss.agenda.models import Appointment
from mss.config import Settings
from mss.conversations import Conversation
from mss.db import Database, utcnow
from mss.demo import load_demo_accounts
from mss.demo_activity import DemoSender, DemoStepRefused
from mss.directory.store import find_patient_by_ins
from mss.mailbox.models import StoredMessage
from mss.profile.store import profile_of
from mss.setup import describe_listeners, initialise


def demo_account(accounts: list[dict[str, Any]], role: str) -> dict[str, Any]:
    return next(a for a in accounts if a["role"] == role)


async def demo(settings: Settings, db: Database) -> list[dict[str, Any]]:
    """``mss init --demo`` in the test's data folder; the accounts it wrote."""
    lines = await initialise(settings, demo=True)
    assert "demo record: 6 reports, 9 messages and 3 convocations for 3 patients" in lines
    return load_demo_accounts(settings)


async def test_the_demo_record_in_the_stores(settings: Settings, db: Database) -> None:
    """What init left for each patient, read back from the stores (both engines)."""
    from dmp_bridge.cda import narrative_html
    from dmp_bridge.models import DmpDocument

    accounts = await demo(settings, db)
    banner = "\n".join(await describe_listeners(settings, db))
    for role in ("patient", "patient (guardian)", "patient (minor)"):
        found = demo_account(accounts, role)
        assert found["email"].endswith("@example.org")
        assert f"{found['ins']} or {found['email']}" in banner
    async with db.read() as session:
        for role in ("patient", "patient (guardian)", "patient (minor)"):
            patient = await find_patient_by_ins(session, demo_account(accounts, role)["ins"])
            assert patient is not None
            documents = (
                await session.scalars(
                    select(DmpDocument)
                    .where(DmpDocument.patient_id == patient.id, DmpDocument.type_code != "60593-1")
                    .options(undefer(DmpDocument.content), undefer(DmpDocument.pdf))
                )
            ).all()
            assert len(documents) == 2, role
            assert sum(d.has_pdf for d in documents) == 1
            for document in documents:
                assert document.pdf is None or document.pdf.startswith(b"%PDF-")
                narrative = narrative_html(document.content)
                assert "<h" in narrative and len(narrative) > 150, narrative
            appointments = (
                await session.scalars(
                    select(Appointment).where(Appointment.patient_id == patient.id)
                )
            ).all()
            assert len(appointments) == 1
            assert appointments[0].starts_at > utcnow() + dt.timedelta(days=7)
            profile = await profile_of(session, patient.id)
            assert sum(1 for items in profile.values() if items) >= 3, role
        closed = (
            await session.scalars(select(Conversation).where(Conversation.state == "closed"))
        ).all()
        assert len(closed) == 2  # Marie's with Dr Dupont, Emma's with Dr Dupont
        signed = (await session.scalars(select(StoredMessage.signature_status))).all()
        assert signed.count("valid") >= 8, signed


async def _message_count(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count(StoredMessage.id)))).scalar_one())


async def test_a_refused_demo_message_is_an_error_and_stores_nothing(
    settings: Settings, db: Database
) -> None:
    accounts = await demo(settings, db)
    sender = DemoSender(settings, db, accounts)
    marie = demo_account(accounts, "patient")["address"]
    doctor = demo_account(accounts, "doctor (médecin traitant)")["address"]
    before = await _message_count(db)

    unsigned = EmailMessage(policy=email.policy.SMTP)
    unsigned["From"], unsigned["To"], unsigned["Subject"] = doctor, marie, "Sans signature"
    unsigned["Message-ID"] = "<unsigned@mss.localhost>"
    unsigned.set_content("Bonjour")
    with pytest.raises(DemoStepRefused, match="refused"):
        await sender.send(doctor, marie, unsigned.as_bytes(), channel="submission")

    # Marie answering the conversation Dr Dupont closed with [FIN]: the policy's refusal.
    async with db.read() as session:
        closing = (
            await session.scalars(
                select(StoredMessage.message_id_header).where(
                    StoredMessage.subject.startswith("[FIN] Re: Résultats")
                )
            )
        ).first()
    assert closing
    reply = EmailMessage(policy=email.policy.SMTP)
    reply["From"], reply["To"], reply["Subject"] = marie, doctor, "Re: une dernière question"
    reply["Message-ID"], reply["In-Reply-To"] = "<late@mss.localhost>", closing
    reply.set_content("Encore une question")
    with pytest.raises(DemoStepRefused, match="closed by the professional"):
        await sender.send(marie, doctor, reply.as_bytes(), channel="portal")
    assert await _message_count(db) == before
