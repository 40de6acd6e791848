"""A small medical record for the "Mon dossier" tests: professionals of the directory and documents.

Documents are written with the store's ``insert_document`` (what the filing
job does after its checks), one per confidentiality flag, each a CDA with a
narrative and a PDF rendering; one biology report gives a second type.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from dmp_bridge.access import DmpRefused, Viewer
from dmp_bridge.documents import DocumentDraft, insert_document, list_documents_for
from mss.db import Database, utcnow
from mss.directory.models import Organisation, Patient, Professional
from tests.xdm_factory import PDF, make_cda

DOCTOR = "810000000014"  # Jean DUPONT, médecin, Cabinet Dupont
NURSE = "810000000021"  # Élodie BERNARD, infirmière
AUTHOR = "810000000016"  # Marc LEFEBVRE, médecin, Hôpital Saint-Louis: writes the documents
TITLES = {
    "plain": "Compte rendu de consultation du 15 janvier",
    "masked": "Compte rendu de consultation en psychiatrie",
    "invisible_patient": "Annonce diagnostique à faire",
    "invisible_guardians": "Consultation de contraception",
    "biology": "Bilan sanguin",
}
FLAGS: dict[str, dict[str, bool]] = {
    "plain": {},
    "masked": {"masked_from_professionals": True},
    "invisible_patient": {"invisible_to_patient": True},
    "invisible_guardians": {"invisible_to_legal_representatives": True},
    "biology": {},
}
REASON = "Patiente inconsciente aux urgences, recherche d'allergies"
NARRATIVE = (
    "<paragraph>Patiente vue en consultation.</paragraph><list><item>Tension 12/8</item>"
    '<item><content styleCode="Bold">Pas de fièvre</content></item></list>'
    '<paragraph><linkHtml href="javascript:alert(1)">lien piégé</linkHtml> '
    '<linkHtml href="https://www.has-sante.fr/">recommandations</linkHtml></paragraph>'
)


@dataclass
class Record:
    """The professionals by idNat and the documents of one patient by name."""

    professionals: dict[str, Professional] = field(default_factory=dict)
    documents: dict[str, int] = field(default_factory=dict)


async def add_professionals(db: Database) -> dict[str, Professional]:
    async with db.write() as session:
        cabinet = Organisation(name="Cabinet Dupont", finess="750000001")
        hospital = Organisation(name="Hôpital Saint-Louis", finess="750100125")
        session.add_all([cabinet, hospital])
        await session.flush()
        rows = {
            DOCTOR: Professional(
                id_nat=DOCTOR,
                family_name="DUPONT",
                given_names="Jean",
                profession_code="10",
                organisation_id=cabinet.id,
            ),
            NURSE: Professional(
                id_nat=NURSE, family_name="BERNARD", given_names="Élodie", profession_code="60"
            ),
            AUTHOR: Professional(
                id_nat=AUTHOR,
                family_name="LEFEBVRE",
                given_names="Marc",
                profession_code="10",
                organisation_id=hospital.id,
            ),
        }
        session.add_all(rows.values())
    return rows


async def file_documents(db: Database, patient: Patient, prefix: str = "") -> dict[str, int]:
    """The five documents of ``TITLES`` in ``patient``'s record, newest first in this order."""
    ids: dict[str, int] = {}
    async with db.write() as session:
        for n, (name, title) in enumerate(TITLES.items()):
            biology = name == "biology"
            document = await insert_document(
                session,
                patient,
                DocumentDraft(
                    content=make_cda(doc_ext=f"{patient.id}{n}", narrative=NARRATIVE),
                    mime_type="text/xml",
                    title=prefix + title,
                    unique_id=f"1.2.250.1.999.1.1.{patient.id}^{n}",
                    type_code="11502-2" if biology else "11488-4",
                    type_system="2.16.840.1.113883.6.1",
                    type_label="Compte rendu d'examens biologiques"
                    if biology
                    else "Compte rendu de consultation",
                    author_id_nat=AUTHOR,
                    author_name="Dr Marc LEFEBVRE",
                    author_institution="Hôpital Saint-Louis",
                    author_institution_id="750100125",
                    creation_time=utcnow() - dt.timedelta(days=n + 1),
                    pdf=PDF,
                    **FLAGS[name],
                ),
            )
            ids[name] = document.id
    return ids


async def professional_finds(
    db: Database, patient_id: int, id_nat: str, reason: str | None = None
) -> set[str]:
    """The titles a professional finds in the record; a refusal raises DmpRefused, its audit event
    kept."""
    async with db.write() as session:
        patient = await session.get(Patient, patient_id)
        professional = (
            await session.scalars(select(Professional).where(Professional.id_nat == id_nat))
        ).one()
        assert patient is not None
        viewer = Viewer.for_professional(professional, break_glass_reason=reason, source="test")
        try:
            return {d.title for d in await list_documents_for(session, viewer, patient)}
        except DmpRefused as error:
            refusal = error  # leave the block normally: the refusal's audit event commits
    raise refusal
