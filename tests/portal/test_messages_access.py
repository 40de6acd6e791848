"""No patient reaches another patient's message, attachment or conversation by changing an id in a
URL; a guardian reaches the messages of the minors they hold, and only those, and every act names
the minor in on_behalf_of."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete, select

from mss.audit import AuditEvent
from mss.directory.models import Guardianship
from tests.fixtures_pki import DevPki
from tests.portal.conftest import Hub, add_guardianship, add_patient, second_visitor
from tests.portal.messaging import DOCTOR, PDF, Attach, Mail, patient_address, setup_mail

ALICE, BRUNO = "201751234561148", "101751234561297"
PARENT, CHILD, OTHER_CHILD = "201751234560554", "101751234560606", "101751234560705"


@pytest.fixture
async def mail(hub: Hub, dev_pki: DevPki) -> Mail:
    return await setup_mail(hub, dev_pki)


async def _message_with_attachment(mail: Mail, ins: str, subject: str) -> tuple[int, int]:
    """A signed message with a PDF to ``ins``: (entry id, conversation id)."""
    message_id = await mail.send(
        DOCTOR,
        patient_address(ins),
        subject,
        "Texte confidentiel.\n",
        attachments=[Attach("compte-rendu.pdf", "application/pdf", PDF)],
    )
    for entry, message in await mail.entries(patient_address(ins)):
        if message.message_id_header == message_id:
            assert message.conversation_id is not None
            return entry.id, message.conversation_id
    raise AssertionError("not delivered")


async def _urls(hub: Hub, entry: int, conversation: int, *, hidden: bool = True) -> dict[str, int]:
    """The status of every messaging URL naming an entry or a conversation (and a reply to it)."""
    statuses = {}
    for path in (
        f"/messages/{entry}",
        f"/messages/{entry}/pieces/1.2",
        f"/messages/{entry}/pieces/2",
        f"/messages/conversation/{conversation}",
    ):
        response, html = await hub.page(path)
        if hidden:
            assert "Texte confidentiel" not in html and "compte-rendu" not in html
        statuses[path] = response.status
    response = await hub.post(
        f"/messages/{entry}/repondre", {"texte": "Intrus"}, csrf_from="/messages"
    )
    statuses["reply"] = response.status
    return statuses


async def test_no_patient_reaches_another_patients_messages(hub: Hub, mail: Mail) -> None:
    await add_patient(hub.db, ALICE, "Roux", "Alice", phone="+33600000001")
    await add_patient(hub.db, BRUNO, "Fabre", "Bruno", phone="+33600000002")
    own_entry, own_conversation = await _message_with_attachment(mail, ALICE, "Pour Alice")
    entry, conversation = await _message_with_attachment(mail, BRUNO, "Pour Bruno")
    await hub.login(ALICE)
    assert set((await _urls(hub, entry, conversation)).values()) == {404}
    for path in ("/messages/999999999", "/messages/conversation/999999999", "/messages/0/pieces/2"):
        response, _html = await hub.page(path)
        assert response.status == 404
    response, _html = await hub.page("/messages/99999999999999999999")  # beyond the route's digits
    assert response.status == 404
    _response, html = await hub.page("/messages")
    assert "Pour Bruno" not in html and "Pour Alice" in html
    ((bruno_entry, _message),) = await mail.entries(patient_address(BRUNO))
    assert "\\Seen" not in bruno_entry.flags
    assert await mail.stored(DOCTOR) == []  # the forged reply went nowhere
    async with hub.db.read() as session:
        about_bruno = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.actor == ALICE, AuditEvent.action != "login")
            )
        ).all()
    assert about_bruno == []
    statuses = await _urls(hub, own_entry, own_conversation, hidden=False)
    assert (
        statuses[f"/messages/{own_entry}"] == 200
        and statuses[f"/messages/{own_entry}/pieces/1.2"] == 200
    )
    assert statuses[f"/messages/conversation/{own_conversation}"] == 200


async def _family(hub: Hub, mail: Mail) -> dict[str, tuple[int, int]]:
    parent = await add_patient(hub.db, PARENT, "Leroy", "Sophie")
    child = await add_patient(hub.db, CHILD, "Leroy", "Léo", phone=None, password=False)
    await add_patient(hub.db, OTHER_CHILD, "Moreau", "Inès", phone=None, password=False)
    await add_guardianship(hub.db, parent, child)
    return {
        ins: await _message_with_attachment(mail, ins, f"Pour {ins}")
        for ins in (PARENT, CHILD, OTHER_CHILD)
    }


async def _switch(hub: Hub, patient_ins: str) -> None:
    from mss.patients import find_patient_by_identifier

    async with hub.db.read() as session:
        patient = await find_patient_by_identifier(session, patient_ins)
    assert patient is not None
    response = await hub.post("/espace", {"patient": str(patient.id)}, csrf_from="/")
    assert response.status == 303


async def test_guardian_reaches_only_held_minors_messages(hub: Hub, mail: Mail) -> None:
    messages = await _family(hub, mail)
    await hub.login(PARENT)
    child_entry, child_conversation = messages[CHILD]
    # In their own space the parent does not see the child's messages, even by id.
    assert set((await _urls(hub, child_entry, child_conversation)).values()) == {404}
    await _switch(hub, CHILD)
    _response, html = await hub.page("/messages")
    assert f"Pour {CHILD}" in html and f"Pour {PARENT}" not in html
    response, html = await hub.page(f"/messages/{child_entry}")
    assert response.status == 200 and "Texte confidentiel" in html
    # The parent's own message and the other (not held) minor's are out of reach from here.
    for ins in (PARENT, OTHER_CHILD):
        assert set((await _urls(hub, *messages[ins])).values()) == {404}
    response = await hub.post(
        f"/messages/{child_entry}/repondre",
        {"texte": "Merci, docteur."},
        csrf_from=f"/messages/{child_entry}",
    )
    assert response.status == 303
    (reply,) = await mail.stored(DOCTOR)
    assert reply.from_address == patient_address(CHILD)
    assert "Léo Leroy (par Sophie Leroy, représentant légal)" in reply.headers_text
    async with hub.db.read() as session:
        acts = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.actor == PARENT, AuditEvent.action.startswith("message"))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [(e.action, e.actor_kind, e.on_behalf_of) for e in acts] == [
        ("message_read", "guardian", CHILD),
        ("message_read", "guardian", CHILD),
        ("message_sent", "guardian", CHILD),
    ]
    async with hub.db.write() as session:
        await session.execute(delete(Guardianship))
    assert set((await _urls(hub, child_entry, child_conversation)).values()) == {404}


async def test_each_visitor_sees_their_own_list(hub: Hub, mail: Mail) -> None:
    await add_patient(hub.db, ALICE, "Roux", "Alice", phone="+33600000001")
    await add_patient(hub.db, BRUNO, "Fabre", "Bruno", phone="+33600000002")
    await _message_with_attachment(mail, ALICE, "Pour Alice")
    await _message_with_attachment(mail, BRUNO, "Pour Bruno")
    other = await second_visitor(hub)
    try:
        await hub.login(ALICE)
        await other.login(BRUNO)
        for visitor, mine, theirs in (
            (hub, "Pour Alice", "Pour Bruno"),
            (other, "Pour Bruno", "Pour Alice"),
        ):
            for path in ("/messages", "/messages/envoyes", "/"):
                _response, html = await visitor.page(path)
                assert theirs not in html
            _response, html = await visitor.page("/messages")
            assert mine in html and re.search(r"1 message non lu", html)
    finally:
        await other.client.close()
