"""Store functions the portal calls: consent changes, reveal and withheld history, patient
documents,
the médecin traitant's break-glass notice; and the filing/MDN decisions alone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dmp_bridge.access import DmpRefused, Viewer
from dmp_bridge.consent_store import (
    consent_facts,
    set_authorisation,
    set_block,
    set_treating_doctor,
)
from dmp_bridge.documents import add_patient_document, list_documents_for, reveal_to_patient
from dmp_bridge.emergency import notify_treating
from mss.audit import AuditEvent
from mss.directory.models import Mailbox
from mss.jobs import JobContext
from mss.mailbox.models import StoredMessage
from mss.policy.consent import ConsentFacts
from mss.policy.dmp_filing import (
    FilingAnswer,
    FilingFacts,
    MdnFacts,
    TargetFacts,
    decide_filing,
    decide_filing_answer,
    decide_mdn,
)
from mss.services import Services
from portal.history import read_history
from tests.dmp.conftest import World
from tests.dmp.matrix import ID_NATS, REASON


async def test_consent_changes_are_the_patients_and_audited(world: World) -> None:
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        with pytest.raises(DmpRefused) as refused:
            await set_authorisation(session, world.viewer("treating"), patient, "810000000099")
        assert refused.value.decision.status == 403
        await set_block(session, world.viewer("guardian"), patient, ID_NATS["treating"])
        facts = await consent_facts(session, patient)
        assert facts.treating_id_nat is None and ID_NATS["treating"] in facts.blocked
        await set_treating_doctor(
            session, world.viewer("patient"), patient, world.professionals["treating"]
        )
        facts = await consent_facts(session, patient)
        assert facts.treating_id_nat == ID_NATS["treating"]
        assert ID_NATS["treating"] not in facts.blocked
        stranger = Viewer.for_guardian(patient)  # not the guardian of themself
        with pytest.raises(DmpRefused):
            await set_block(session, stranger, patient, ID_NATS["authorised"])
    async with world.db.read() as session:
        history = await read_history(session, world.patient.id, kind="consentements")
    assert len(history) >= 5 and {line.what for line in history} == {"Consentement modifié"}


async def test_reveal_releases_the_withheld_history(world: World) -> None:
    hidden = world.documents["invisible_patient"]
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        await list_documents_for(session, world.viewer("authorised"), patient)
        from dmp_bridge.documents import get_document

        await get_document(session, world.viewer("authorised"), patient, hidden)
    async with world.db.read() as session:
        before = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.target == f"dmp-document:{hidden}")
            )
        ).all()
    assert before and all(e.patient_id is None for e in before)
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        await reveal_to_patient(session, world.viewer("treating"), patient, hidden)
        seen = {d.id for d in await list_documents_for(session, world.viewer("patient"), patient)}
    assert hidden in seen
    async with world.db.read() as session:
        after = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.target == f"dmp-document:{hidden}")
            )
        ).all()
    assert all(e.patient_id == world.patient.id for e in after)


async def test_patient_adds_a_document_professionals_authorised_see_it(world: World) -> None:
    async with world.db.write() as session:
        patient = await session.merge(await world.fresh_patient())
        document = await add_patient_document(
            session,
            world.viewer("patient"),
            patient,
            content=b"%PDF-1.4 vaccins",
            mime_type="application/pdf",
            title="Carnet de vaccination",
        )
        assert document.author_id_nat is None and document.has_pdf
        found = await list_documents_for(session, world.viewer("authorised"), patient)
    assert document.id in {d.id for d in found}


async def test_treating_doctor_notice_lands_in_their_mailbox(world: World) -> None:
    ctx = JobContext(db=world.db, job_id=42, attempt=1, services=Services(world.settings))
    payload = {
        "patient_id": world.patient.id,
        "professional_id": world.professionals["treating"].id,
        "actor": ID_NATS["break_glass"],
        "actor_name": "Dr BREAK_GLASS",
        "reason": REASON,
        "at": "2026-01-02T03:04:05+00:00",
    }
    await notify_treating(ctx, payload)
    await notify_treating(ctx, payload)  # idempotent
    async with world.db.read() as session:
        notices = (
            await session.scalars(
                select(StoredMessage).where(
                    StoredMessage.message_id_header.like("<dmp-emergency-%")
                )
            )
        ).all()
    assert len(notices) == 1
    assert notices[0].subject == "Accès en urgence au dossier de Ruth NESSI"
    async with world.db.read() as session:
        box = (
            await session.scalars(
                select(Mailbox).where(Mailbox.address == "treating@mss.localhost")
            )
        ).one()
    assert box.professional_id == world.professionals["treating"].id


FACTS = FilingFacts(
    record_open=True,
    recipient_ins="277076322082910",
    entry_ins="277076322082910",
    author_id_nat="810000000016",
    author_institution="750000001",
    consent=ConsentFacts(),
)


def test_filing_decisions() -> None:
    from dataclasses import replace

    assert decide_filing(FACTS).allowed
    assert decide_filing(replace(FACTS, record_open=False)).code == 902
    assert decide_filing(replace(FACTS, entry_ins=None)).code == 903
    assert decide_filing(replace(FACTS, entry_ins="147720425367411")).code == 904
    assert decide_filing(replace(FACTS, refusals=((905, "x", "y"),))).code == 905
    blocked = ConsentFacts(blocked=frozenset({"810000000016"}))
    assert decide_filing(replace(FACTS, consent=blocked)).code == 901
    assert (
        decide_filing(
            replace(FACTS, sender_id_nat="810000000016", author_id_nat=None, consent=blocked)
        ).code
        == 901
    )
    current = TargetFacts("current", "810000000016", None)
    assert decide_filing(replace(FACTS, action="C", target=current)).allowed
    assert decide_filing(replace(FACTS, action="D", target=None)).code == 900
    assert (
        decide_filing(replace(FACTS, action="C", target=TargetFacts("replaced", None, None))).code
        == 900
    )
    other = TargetFacts("current", "810000000099", "999")
    assert decide_filing(replace(FACTS, action="C", target=other)).code == 901
    colleague = TargetFacts("current", "810000000099", "750000001")
    assert decide_filing(replace(FACTS, action="D", target=colleague)).allowed


def test_mdn_decisions() -> None:
    doctor = "jean.dupont@mss.localhost"
    assert decide_mdn(MdnFacts((doctor,), doctor)) == doctor
    assert decide_mdn(MdnFacts(("Jean.Dupont@MSS.localhost",), doctor)) == doctor
    assert decide_mdn(MdnFacts((), doctor)) is None
    assert decide_mdn(MdnFacts(("other@mss.localhost",), doctor)) is None  # RFC 8098 §2.1
    assert decide_mdn(MdnFacts((doctor,), "")) is None
    assert decide_mdn(MdnFacts((doctor,), doctor, auto_submitted="auto-replied")) is None
    assert decide_mdn(MdnFacts((doctor,), doctor, content_type="multipart/report")) is None


def test_filing_answer_decisions() -> None:
    """An MDN when asked; else, on an error only, the IG's standard e-mail to the Return-Path."""
    doctor = "jean.dupont@mss.localhost"
    assert decide_filing_answer(MdnFacts((doctor,), doctor), None) == FilingAnswer("mdn", doctor)
    assert decide_filing_answer(MdnFacts((doctor,), doctor), 902) == FilingAnswer("mdn", doctor)
    assert decide_filing_answer(MdnFacts((), doctor), None) is None
    assert decide_filing_answer(MdnFacts((), "Jean.Dupont@MSS.localhost"), 902) == FilingAnswer(
        "error_email", doctor
    )
    # asked for elsewhere than the Return-Path: no automatic MDN (RFC 8098 §2.1), the e-mail
    assert decide_filing_answer(MdnFacts(("other@mss.localhost",), doctor), 906) == FilingAnswer(
        "error_email", doctor
    )
    assert decide_filing_answer(MdnFacts((), ""), 902) is None  # a bounce is never answered
    assert decide_filing_answer(MdnFacts((), doctor, auto_submitted="auto-generated"), 902) is None
    assert decide_filing_answer(MdnFacts((), doctor, content_type="multipart/report"), 902) is None
