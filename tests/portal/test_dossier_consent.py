"""The consent page: find professionals, authorise, block, name the médecin traitant, oppose
break-glass and the record; each change is the patient's (or guardian's), confirmed and in the
history."""

from __future__ import annotations

import re
from html import unescape

import aiohttp
import pytest
from sqlalchemy import func, select

from dmp_bridge.access import DmpRefused
from dmp_bridge.consent_store import consent_facts
from dmp_bridge.models import DmpDocument
from mss.audit import AuditEvent
from mss.db import Database
from mss.directory.models import Patient
from mss.policy.consent import ConsentFacts
from portal.record import CLOSED_SENTENCE
from tests.portal.conftest import Hub, add_guardianship, add_patient
from tests.portal.dossier_world import (
    AUTHOR,
    DOCTOR,
    NURSE,
    REASON,
    TITLES,
    add_professionals,
    file_documents,
    professional_finds,
)

CLAIRE, PARENT, CHILD = "201751234560554", "201751234566195", "101751234560606"
PAGE = "/dossier/acces"


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def _facts(db: Database, patient_id: int) -> ConsentFacts:
    async with db.read() as session:
        patient = await session.get(Patient, patient_id)
        assert patient is not None
        return await consent_facts(session, patient)


async def _act(hub: Hub, action: str, id_nat: str) -> aiohttp.ClientResponse:
    return await hub.post(
        f"{PAGE}/professionnel", {"action": action, "id_nat": id_nat}, csrf_from=PAGE
    )


async def test_find_a_professional_by_name_or_rpps(hub: Hub) -> None:
    await add_professionals(hub.db)
    await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    await hub.login(CLAIRE)
    for query in ("dupont", "Jean Dup", "10000000014", "810000000014"):
        _response, html = await hub.page(f"{PAGE}?q={query}")
        text = _text(html)
        assert "Jean DUPONT Médecin · Cabinet Dupont RPPS 10000000014" in text, query
        assert "Élodie BERNARD" not in text
    for query in ("élodie", "ÉLODIE", "bernard"):
        _response, html = await hub.page(f"{PAGE}?q={query}")
        assert "Élodie BERNARD Infirmier" in _text(html), query
    _response, html = await hub.page(f"{PAGE}?q=zzz")
    assert "Aucun professionnel trouvé pour « zzz »" in _text(html)


async def test_authorise_block_and_name_the_treating_doctor(hub: Hub) -> None:
    await add_professionals(hub.db)
    claire = await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    await file_documents(hub.db, claire)
    await hub.login(CLAIRE)
    with pytest.raises(DmpRefused):  # not authorised: may deposit, not read
        await professional_finds(hub.db, claire.id, DOCTOR)
    response = await _act(hub, "autoriser", DOCTOR)
    assert response.status == 303
    _response, html = await hub.page(response.headers["Location"])
    assert "Jean DUPONT peut maintenant consulter le dossier." in _text(html)
    assert DOCTOR in (await _facts(hub.db, claire.id)).authorised
    assert TITLES["masked"] not in await professional_finds(hub.db, claire.id, DOCTOR)  # MASQUE_PS
    response = await _act(hub, "bloquer", NURSE)
    _response, html = await hub.page(response.headers["Location"])
    assert "Élodie BERNARD est bloqué" in _text(html)
    response = await _act(hub, "traitant", NURSE)
    assert response.status == 422
    assert (
        "Seul un médecin peut être votre médecin traitant : Élodie BERNARD est infirmier"
        in _text(await response.text())
    )
    response = await _act(hub, "traitant", DOCTOR)
    _response, html = await hub.page(response.headers["Location"])
    assert "Jean DUPONT est désigné médecin traitant" in _text(html)
    facts = await _facts(hub.db, claire.id)
    assert facts.treating_id_nat == DOCTOR and facts.blocked == {NURSE}
    assert TITLES["masked"] in await professional_finds(hub.db, claire.id, DOCTOR)
    _response, html = await hub.page(PAGE)
    text = _text(html)
    assert "Médecin traitant Jean DUPONT Médecin · Cabinet Dupont" in text
    assert "Professionnels bloqués Élodie BERNARD" in text
    for action, id_nat in (("retirer", DOCTOR), ("debloquer", NURSE)):
        assert (await _act(hub, action, id_nat)).status == 303
    response = await hub.post(f"{PAGE}/traitant/retirer", {}, csrf_from=PAGE)
    assert response.headers["Location"] == f"{PAGE}?fait=traitant-retire"
    assert await _facts(hub.db, claire.id) == ConsentFacts()
    assert (
        await _act(hub, "retirer", AUTHOR)
    ).status == 422  # not in the list: nothing to withdraw
    assert (await _act(hub, "autoriser", "810000009999")).status == 422  # not in the directory
    assert (await _act(hub, "supprimer", DOCTOR)).status == 422
    _response, html = await hub.page("/historique?type=consentements")
    text = _text(html)
    for change in (
        "professionnel autorisé, Jean DUPONT, médecin, RPPS 10000000014",
        "professionnel bloqué, Élodie BERNARD, infirmier, RPPS 10000000021",
        "médecin traitant désigné, Jean DUPONT, médecin, RPPS 10000000014",
        "autorisation retirée, Jean DUPONT, médecin, RPPS 10000000014",
        "professionnel débloqué, Élodie BERNARD, infirmier, RPPS 10000000021",
        "médecin traitant retiré",
    ):
        assert f"Consentement modifié ({change})" in text, change
    assert "Claire Martin (vous-même)" in text


async def test_opposing_break_glass_refuses_emergency_access(hub: Hub) -> None:
    await add_professionals(hub.db)
    claire = await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    await file_documents(hub.db, claire)
    await hub.login(CLAIRE)
    response = await hub.post(f"{PAGE}/urgence", {"opposer": "oui"}, csrf_from=PAGE)
    _response, html = await hub.page(response.headers["Location"])
    assert "Votre opposition à l'accès en urgence est enregistrée" in _text(html)
    assert "Ne plus m'opposer à l'accès en urgence" in _text(html)
    with pytest.raises(DmpRefused) as refused:
        await professional_finds(hub.db, claire.id, NURSE, REASON)
    assert refused.value.decision.reason == "break_glass_opposed"
    await hub.post(f"{PAGE}/urgence", {"opposer": "non"}, csrf_from=PAGE)
    assert not (await _facts(hub.db, claire.id)).break_glass_opposed
    assert TITLES["plain"] in await professional_finds(hub.db, claire.id, NURSE, REASON)
    _response, html = await hub.page("/historique")
    text = _text(html)
    assert (
        f"Accès en urgence au dossier ({REASON})" in text and "Élodie BERNARD (infirmier)" in text
    )
    assert "Consentement modifié (opposition à l'accès en urgence)" in text
    assert "Consentement modifié (fin de l'opposition à l'accès en urgence)" in text


async def test_opposing_the_record_needs_a_confirmation_and_closes_it(hub: Hub) -> None:
    await add_professionals(hub.db)
    claire = await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    ids = await file_documents(hub.db, claire)
    await hub.login(CLAIRE)
    form = f"{PAGE}/opposition"
    response = await hub.post(form, {"opposer": "oui"}, csrf_from=form)
    assert response.status == 400 and "Cochez la case" in _text(await response.text())
    assert (await _facts(hub.db, claire.id)).record_open
    response = await hub.post(form, {"opposer": "oui", "confirme": "oui"}, csrf_from=form)
    assert response.headers["Location"] == f"{PAGE}?fait=dmp-oppose"
    assert not (await _facts(hub.db, claire.id)).record_open
    _response, html = await hub.page("/dossier")
    assert (
        "Vous vous êtes opposé à ce dossier médical" in _text(html) and TITLES["plain"] not in html
    )
    response, html = await hub.page(f"/dossier/documents/{ids['plain']}")
    assert response.status == 404 and CLOSED_SENTENCE in unescape(html)
    with pytest.raises(DmpRefused):
        await professional_finds(hub.db, claire.id, DOCTOR)
    response = await hub.post(form, {"opposer": "non"}, csrf_from=PAGE)
    assert response.headers["Location"] == f"{PAGE}?fait=dmp-rouvert"
    _response, html = await hub.page("/dossier")
    assert TITLES["plain"] in unescape(html)


async def test_a_guardian_manages_the_minors_consent(hub: Hub) -> None:
    await add_professionals(hub.db)
    parent = await add_patient(hub.db, PARENT, "Leroy", "Sophie")
    child = await add_patient(hub.db, CHILD, "Leroy", "Léo", phone=None, password=False)
    await add_guardianship(hub.db, parent, child)
    await hub.login(PARENT)
    await hub.post("/espace", {"patient": str(child.id)}, csrf_from="/")
    _response, html = await hub.page(PAGE)
    assert "Qui peut voir le dossier de Léo Leroy" in _text(html)
    assert (await _act(hub, "traitant", DOCTOR)).status == 303
    assert (await _facts(hub.db, child.id)).treating_id_nat == DOCTOR
    assert (await _facts(hub.db, parent.id)).treating_id_nat is None
    async with hub.db.read() as session:
        event = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "consent_changed"))
        ).one()
    assert (event.patient_id, event.actor_kind, event.actor) == (child.id, "guardian", PARENT)


async def test_every_dossier_form_needs_the_csrf_token(hub: Hub) -> None:
    await add_professionals(hub.db)
    claire = await add_patient(hub.db, CLAIRE, "Martin", "Claire")
    ids = await file_documents(hub.db, claire)
    await hub.login(CLAIRE)
    posts: list[tuple[str, dict[str, str]]] = [
        (f"/dossier/documents/{ids['plain']}/masquage", {"masquer": "oui"}),
        (f"{PAGE}/professionnel", {"action": "autoriser", "id_nat": DOCTOR}),
        (f"{PAGE}/professionnel", {"action": "traitant", "id_nat": DOCTOR}),
        (f"{PAGE}/traitant/retirer", {}),
        (f"{PAGE}/urgence", {"opposer": "oui"}),
        (f"{PAGE}/opposition", {"opposer": "oui", "confirme": "oui"}),
    ]
    for path, data in posts:
        for token in (None, "forged"):
            sent = data if token is None else {"csrf": token, **data}
            response = await hub.client.post(path, data=sent, allow_redirects=False)
            assert response.status == 403, path
            assert "jeton de sécurité manque ou a expiré" in unescape(await response.text())
    upload = aiohttp.FormData()
    upload.add_field("fichier", b"%PDF-1.4", filename="a.pdf", content_type="application/pdf")
    upload.add_field("titre", "Forgé")
    upload.add_field("type", "autre")
    response = await hub.client.post("/dossier/ajouter", data=upload, allow_redirects=False)
    assert response.status == 403
    assert await _facts(hub.db, claire.id) == ConsentFacts()
    async with hub.db.read() as session:
        assert (
            await session.execute(select(func.count()).select_from(DmpDocument))
        ).scalar_one() == len(ids)
        assert not (await session.get(DmpDocument, ids["plain"])).masked_from_professionals  # type: ignore[union-attr]
