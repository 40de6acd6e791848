"""Demo data: a hospital, professionals, a pharmacy and patients, with logins.

Passwords are drawn at random on each installation and kept, with the
certificate paths, in ``<data_dir>/demo/accounts.json`` (mode 0600), which
``mss demo accounts --json`` prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from mss.command import hub_command
from mss.config import Settings


def demo_accounts_file(settings: Settings) -> Path:
    return settings.data_path / "demo" / "accounts.json"


def load_demo_accounts(settings: Settings) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = json.loads(
        demo_accounts_file(settings).read_text(encoding="utf-8")
    )
    return accounts


def save_demo_accounts(settings: Settings, accounts: list[dict[str, Any]]) -> None:
    path = demo_accounts_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(accounts, out, ensure_ascii=False, indent=2)


@click.group()
def demo() -> None:
    """Demo data."""


@demo.command("accounts")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (default: a table).")
@hub_command
async def accounts(settings: Settings, as_json: bool) -> None:
    """Every demo account: role, address, password, INS or idNat, certificate paths."""
    from mss.errors import InvalidInput

    if not demo_accounts_file(settings).is_file():
        raise InvalidInput(f"no demo data in {settings.data_path}: run 'mss init --demo' first")
    found = load_demo_accounts(settings)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    for account in found:
        click.echo(f"{account['role']:<28} {demo_login(account):<44} {account['password']}")


def demo_login(account: dict[str, Any]) -> str:
    """What to type as the login: the address, or a patient's INS or e-mail."""
    login = str(account.get("login") or account["address"])
    return f"{login} or {account['email']}" if account.get("email") else login


# -- the demo data --------------------------------------------------------------------------

HOSPITAL_FINESS = "310123450"
PHARMACY_FINESS = "750001232"


WEIGHT_LOG_CLIENT_ID = "demo-carnet-poids"
WEIGHT_LOG_NAME = "Carnet de poids et de glycémie"
WEIGHT_LOG_PORT = 8765


async def add_demo_service(session: Any, port: int = WEIGHT_LOG_PORT) -> Any:
    """The demo weight and blood-sugar log (``examples/weight_log.py``), referenced."""
    from mss.catalogue.store import add_service

    base = f"http://127.0.0.1:{port}"
    return await add_service(
        session,
        name=WEIGHT_LOG_NAME,
        editor="Association Démo Santé",
        description="Notez votre poids et votre glycémie, et suivez leur évolution.",
        scopes=["measurements:write", "documents:11502-2"],
        redirect_uris=[f"{base}/retour"],
        home_url=f"{base}/",
        status="referenced",
        client_id=WEIGHT_LOG_CLIENT_ID,
    )


def _password() -> str:
    """A random password that meets the portal's policy: four groups of four, letters and digits."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    while True:
        groups = ["".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4)]
        candidate = "-".join(groups)
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate


async def _demo_record(
    session: Any, patient: Any, professionals: dict[str, Any], pharmacy: Any, now: Any
) -> None:
    """Marie Durand's record: two dispensations from the demo pharmacy, sent by its software
    (eDISP-MED through the document API's deposit), and an allergy her médecin traitant
    recorded in her profile."""
    import datetime as dt
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from dmp_bridge.access import Viewer
    from dmp_bridge.dispensation import DISPENSATION_LABEL, DISPENSATION_TYPE, LOINC_OID
    from dmp_bridge.dispensation_cda import DispensationParty, DispenseLine, build_dispensation
    from dmp_bridge.documents import DocumentDraft, deposit_document
    from mss.profile.store import add_item

    pharmacist = professionals["Bernard"]
    party = DispensationParty(
        ins=patient.ins,
        family=patient.family_name.upper(),
        given=patient.given_names,
        birth_date=patient.birth_date,
        gender="F",
        pharmacist_id_nat=pharmacist.id_nat,
        pharmacist_family=pharmacist.family_name.upper(),
        pharmacist_given=pharmacist.given_names,
        pharmacy=pharmacy.name,
        pharmacy_finess=pharmacy.finess,
    )
    paris = ZoneInfo("Europe/Paris")
    sent = [
        (
            40,
            [
                (
                    "SPASFON LYOC 80 mg, lyophilisat oral",
                    "3400934287006",
                    1,
                    "boîte",
                    "1 lyophilisat à faire fondre sous la langue, 3 fois par jour",
                ),
                (
                    "DOLIPRANE 1000 mg, comprimé",
                    "3400935955838",
                    2,
                    "boîtes",
                    "1 comprimé jusqu'à 3 fois par jour si douleur",
                ),
            ],
        ),
        (
            9,
            [
                (
                    "LÉVOTHYROX 75 microgrammes, comprimé sécable",
                    "3400936595996",
                    3,
                    "boîtes",
                    "1 comprimé le matin à jeun",
                ),
            ],
        ),
    ]
    viewer = Viewer.for_professional(pharmacist, pharmacy, source="api")
    for n, (days_ago, lines) in enumerate(sent, start=1):
        moment = (now - dt.timedelta(days=days_ago)).astimezone(paris).replace(microsecond=0)
        content = build_dispensation(
            party,
            [
                DispenseLine(m, code, Decimal(q), unit, dose, moment)
                for m, code, q, unit, dose in lines
            ],
            document_root=f"1.2.250.1.999.9.{PHARMACY_FINESS}",
            document_extension=f"demo-{n}",
            effective_time=moment,
        )
        await deposit_document(
            session,
            viewer,
            patient,
            DocumentDraft(
                content=content,
                mime_type="text/xml",
                title=f"{DISPENSATION_LABEL} du {moment:%d/%m/%Y}",
                unique_id=f"1.2.250.1.999.9.{PHARMACY_FINESS}^demo-{n}",
                type_code=DISPENSATION_TYPE,
                type_system=LOINC_OID,
                type_label=DISPENSATION_LABEL,
                author_id_nat=pharmacist.id_nat,
                author_name=f"{pharmacist.given_names} {pharmacist.family_name}",
                author_institution=pharmacy.name,
                author_institution_id=pharmacy.finess,
                creation_time=moment,
                source="api",
            ),
        )
    doctor = professionals["Dupont"]
    await add_item(
        session,
        patient.id,
        category="allergy",
        label="Pénicillines",
        detail="Urticaire géante en 2019 sous amoxicilline",
        when="2019",
        author_kind="professional",
        author=doctor.id_nat,
        author_name=f"Dr {doctor.given_names} {doctor.family_name}",
        source="api",
        now=now,
    )


async def create_demo(settings: Settings, db: Any) -> list[str]:
    """Create the demo hospital, pharmacy, professionals and patients once; returns what it did."""
    import datetime as dt

    from mss.crypto import pki
    from mss.db import utcnow
    from mss.directory import store
    from mss.directory.models import MailboxKind, OrganisationKind, PatientState

    domain = settings.domain
    async with db.read() as session:
        if await store.find_organisation_by_finess(session, HOSPITAL_FINESS) is not None:
            return ["demo data already present (mss demo accounts --json lists it)"]

    accounts: list[dict[str, Any]] = []

    def encryption_paths(address: str) -> dict[str, str]:
        """The mailbox's encryption certificate (peers encrypt to it; the hub decrypts)."""
        sealed = pki.issue_encryption(settings.pki_dir, address)
        return {"encryption_certificate": str(sealed.cert.resolve())}

    def certify(
        address: str,
        *,
        id_nat: str | None = None,
        name: str | None = None,
        title: str | None = None,
        client: bool = False,
    ) -> dict[str, str]:
        issued = pki.issue_smime(
            settings.pki_dir, address, id_nat=id_nat, common_name=name, title=title
        )
        paths = {"certificate": str(issued.cert.resolve()), "key": str(issued.key.resolve())}
        paths.update(encryption_paths(address))
        if client or id_nat:  # a professional's client certificate carries the idNat (document API)
            tls = pki.issue_client(
                settings.pki_dir, address, id_nat=id_nat, common_name=name, title=title
            )
            paths.update(
                client_certificate=str(tls.cert.resolve()), client_key=str(tls.key.resolve())
            )
        return paths

    async with db.write() as session:
        hospital = await store.create_organisation(
            session,
            name="Centre hospitalier de démonstration",
            finess=HOSPITAL_FINESS,
            kind=OrganisationKind.HOSPITAL,
        )
        pharmacy = await store.create_organisation(
            session,
            name="Pharmacie du Centre",
            finess=PHARMACY_FINESS,
            kind=OrganisationKind.PHARMACY,
        )
        people = [
            (
                "doctor (médecin traitant)",
                "810001234565",
                "Dupont",
                "Jean",
                "10",
                "SM54",
                None,
                "Médecin",
            ),
            (
                "doctor (cardiologist)",
                "810002345675",
                "Martin",
                "Claire",
                "10",
                "SM04",
                hospital,
                "Médecin",
            ),
            ("pharmacist", "810003456786", "Bernard", "Paul", "21", "", pharmacy, "Pharmacien"),
        ]
        professionals = {}
        for role, id_nat, family, given, profession, specialty, organisation, title in people:
            professional = await store.create_professional(
                session,
                id_nat=id_nat,
                family_name=family,
                given_names=given,
                profession_code=profession,
                specialty_code=specialty,
                organisation=organisation,
            )
            professionals[family] = professional
            address = f"{given}.{family}@{domain}".lower()
            password = _password()
            name = f"{given} {family}"
            await store.create_mailbox(
                session,
                address=address,
                kind=MailboxKind.PER,
                password=password,
                owner=store.MailboxOwner(professional, organisation),
                display_name=("Dr " if profession == "10" else "") + name,
            )
            accounts.append(
                {
                    "role": role,
                    "name": name,
                    "address": address,
                    "login": address,
                    "password": password,
                    "id_nat": id_nat,
                    **certify(address, id_nat=id_nat, name=name, title=title),
                }
            )
        services = [
            (
                "cardiology service (ORG)",
                f"cardiologie@{domain}",
                MailboxKind.ORG,
                hospital,
                "Service de cardiologie",
                False,
            ),
            (
                "hospital convocations (APP)",
                f"convocations@{domain}",
                MailboxKind.APP,
                hospital,
                "Convocations du centre hospitalier",
                False,
            ),
            (
                "pharmacy (ORG)",
                f"pharmacie@{domain}",
                MailboxKind.ORG,
                pharmacy,
                "Pharmacie du Centre",
                True,
            ),
        ]
        for role, address, kind, organisation, display, is_pharmacy in services:
            password = _password()
            mailbox = await store.create_mailbox(
                session,
                address=address,
                kind=kind,
                owner=store.MailboxOwner(organisation=organisation),
                display_name=display,
                pharmacy=is_pharmacy,
                password=password,
            )
            paths = certify(address, name=display, client=kind is MailboxKind.APP)
            if "client_certificate" in paths:
                from cryptography import x509
                from cryptography.hazmat.primitives import hashes

                cert = x509.load_pem_x509_certificate(
                    Path(paths["client_certificate"]).read_bytes()
                )
                mailbox.client_cert_sha256 = cert.fingerprint(hashes.SHA256()).hex()
                mailbox.client_cert_subject = cert.subject.rfc4514_string()
            accounts.append(
                {
                    "role": role,
                    "name": display,
                    "address": address,
                    "login": address,
                    "password": password,
                    "finess": organisation.finess,
                    **paths,
                }
            )

        now = utcnow()
        patients = [
            ("patient", "285037505612306", "Durand", "Marie", dt.date(1985, 3, 14), "+33612345678"),
            (
                "patient (guardian)",
                "179066912304583",
                "Petit",
                "Louis",
                dt.date(1979, 6, 2),
                "+33623456789",
            ),
            ("patient (minor)", "215086912304696", "Petit", "Emma", dt.date(2015, 8, 21), None),
        ]
        created = {}
        for role, ins, family, given, birth, phone in patients:
            email = f"{given}.{family}@example.org".lower()  # a login too (portal: e-mail or INS)
            patient = await store.create_patient(
                session,
                settings,
                ins=ins,
                family_name=family,
                given_names=given,
                birth_date=birth,
                email=email,
                phone=phone,
                now=now,
            )
            password = _password()
            patient.password_hash = await store.hash_password_async(password)
            patient.state, patient.activated_at, patient.state_changed_at = (
                PatientState.ACTIVE,
                now,
                now,
            )
            created[given] = patient
            accounts.append(
                {
                    "role": role,
                    "name": f"{given} {family}",
                    "ins": ins,
                    "login": ins,
                    "email": email,
                    "address": store.patient_mailbox_address(settings, ins),
                    "password": password,
                    "birth_date": birth.isoformat(),
                    "phone": phone,
                    **encryption_paths(store.patient_mailbox_address(settings, ins)),
                }
            )
        created["Marie"].treating_professional_id = professionals["Dupont"].id
        await store.add_guardian(session, guardian=created["Louis"], minor=created["Emma"])
        accounts[-1]["guardian_ins"] = created["Louis"].ins
        await session.flush()
        await _demo_record(session, created["Marie"], professionals, pharmacy, now)
        await add_demo_service(session)

    save_demo_accounts(settings, accounts)
    done = [
        f"demo data created: {len(accounts)} accounts (mss demo accounts --json)",
        f"demo service of the catalogue: {WEIGHT_LOG_NAME} (client {WEIGHT_LOG_CLIENT_ID}), "
        f"run it with: python examples/weight_log.py --hub <portal URL> --insecure",
    ]
    return done + await _demo_activity(settings, db, accounts)


async def _demo_activity(settings: Settings, db: Any, accounts: list[dict[str, Any]]) -> list[str]:
    """The patients' reports, conversations, convocations and profiles (``mss.demo_activity``)."""
    from mss.demo_activity import create_demo_activity

    return await create_demo_activity(settings, db, accounts)
