"""The activation, opposition and account pages, through HTTP."""

from __future__ import annotations

import datetime as dt
from html import unescape
from pathlib import Path

from mss.directory.models import Patient, PatientState
from mss.patients import issue_letters
from tests.portal.conftest import PASSWORD, Hub, add_patient

INS = "201751234563128"
NEW_PASSWORD = "le jardin fleurit en 2026"


async def _patient_with_code(hub: Hub) -> tuple[Patient, str]:
    patient = await add_patient(
        hub.db, INS, "Blanc", "Emma", state=PatientState.CREATED, password=False
    )
    codes: dict[str, str] = {}

    async def keep(p: Patient, code: str) -> None:
        codes[p.ins] = code

    await issue_letters(hub.db, hub.settings, keep)
    return patient, codes[INS]


async def _state(hub: Hub, patient_id: int) -> PatientState:
    async with hub.db.read() as session:
        patient = await session.get(Patient, patient_id)
    assert patient is not None
    return patient.state


async def test_activate_then_sign_in(hub: Hub) -> None:
    patient, code = await _patient_with_code(hub)
    response = await hub.post(
        "/activation",
        {"ins": INS, "code": code, "mot_de_passe": NEW_PASSWORD, "confirmation": "autre chose 123"},
    )
    assert response.status == 400 and "différents" in unescape(await response.text())
    response = await hub.post(
        "/activation", {"ins": INS, "code": code, "mot_de_passe": "court", "confirmation": "court"}
    )
    assert response.status == 409 and "il en faut au moins 12" in unescape(await response.text())
    response = await hub.post(
        "/activation",
        {"ins": INS, "code": code, "mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD},
    )
    assert response.status == 200 and "Votre compte est activé" in unescape(await response.text())
    assert await _state(hub, patient.id) is PatientState.ACTIVE
    await hub.login(INS, NEW_PASSWORD)


async def test_wrong_codes_are_throttled_and_do_not_reveal_the_account(hub: Hub) -> None:
    _patient, code = await _patient_with_code(hub)
    unknown = await hub.post(
        "/activation",
        {
            "ins": "199999999999995",
            "code": code,
            "mot_de_passe": NEW_PASSWORD,
            "confirmation": NEW_PASSWORD,
        },
    )
    known = await hub.post(
        "/activation",
        {
            "ins": INS,
            "code": "ZZZZ-ZZZZ-ZZZZ",
            "mot_de_passe": NEW_PASSWORD,
            "confirmation": NEW_PASSWORD,
        },
    )
    assert unknown.status == known.status == 401
    assert "ne correspondent pas" in unescape(await known.text())
    for _ in range(4):
        hub.clock.advance(seconds=30)
        response = await hub.post(
            "/activation",
            {
                "ins": INS,
                "code": "ZZZZ-ZZZZ-ZZZZ",
                "mot_de_passe": NEW_PASSWORD,
                "confirmation": NEW_PASSWORD,
            },
        )
    assert "bloquée pendant 15 minutes" in unescape(await response.text())
    response = await hub.post(
        "/activation",
        {"ins": INS, "code": code, "mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD},
    )
    assert response.status == 429


async def test_opposition_page(hub: Hub) -> None:
    patient, code = await _patient_with_code(hub)
    response = await hub.post("/opposition", {"ins": INS, "code": code})
    assert response.status == 400 and "Cochez la case" in await response.text()
    response = await hub.post("/opposition", {"ins": INS, "code": code, "confirme": "oui"})
    assert response.status == 200 and "Votre opposition est enregistrée" in await response.text()
    assert await _state(hub, patient.id) is PatientState.OPPOSED


async def test_opposition_after_the_deadline_is_refused_with_the_date(hub: Hub) -> None:
    patient, code = await _patient_with_code(hub)
    hub.clock.advance(days=hub.settings.portal.opposition_window_days, minutes=1)
    response = await hub.post("/opposition", {"ins": INS, "code": code, "confirme": "oui"})
    text = unescape(await response.text())
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=42)).strftime("%d/%m/%Y")
    assert response.status == 409 and f"Le délai d'opposition a pris fin le {deadline}" in text
    assert await _state(hub, patient.id) is PatientState.OPPOSITION_WINDOW


async def test_deactivate_reactivate_close_own_account(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Blanc", "Emma")
    await hub.login(INS)
    response = await hub.post("/compte/reactiver", {}, csrf_from="/compte/reactiver")
    assert response.status == 409 and "Seul un compte désactivé" in unescape(await response.text())
    response = await hub.post("/compte/desactiver", {}, csrf_from="/compte/desactiver")
    assert response.status == 303 and await _state(hub, patient.id) is PatientState.DEACTIVATED
    _response, html = await hub.page("/compte?fait=desactiver")
    assert "Le compte est désactivé" in html and "/compte/reactiver" in html
    response = await hub.post("/compte/reactiver", {}, csrf_from="/compte/reactiver")
    assert await _state(hub, patient.id) is PatientState.ACTIVE
    response = await hub.post(
        "/compte/cloturer", {"mot_de_passe": PASSWORD}, csrf_from="/compte/cloturer"
    )
    assert response.status == 400  # the box is not ticked
    response = await hub.post(
        "/compte/cloturer",
        {"comprends": "oui", "mot_de_passe": "faux"},
        csrf_from="/compte/cloturer",
    )
    assert response.status == 401 and await _state(hub, patient.id) is PatientState.ACTIVE
    response = await hub.post(
        "/compte/cloturer",
        {"comprends": "oui", "mot_de_passe": PASSWORD},
        csrf_from="/compte/cloturer",
    )
    assert response.status == 200 and "Votre compte est clôturé" in unescape(await response.text())
    assert await _state(hub, patient.id) is PatientState.CLOSED
    response, _html = await hub.page("/")
    assert response.status == 303  # signed out


async def test_unknown_account_action_is_404(hub: Hub, tmp_path: Path) -> None:
    await add_patient(hub.db, INS, "Blanc", "Emma")
    await hub.login(INS)
    response, _html = await hub.page("/compte/supprimer-tout")
    assert response.status == 404
