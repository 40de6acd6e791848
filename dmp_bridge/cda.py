"""Read the header of a CDA R2 document: ``read_cda_header(bytes) -> CdaHeader``.

Tolerated (README §6): a UTF-8 BOM, no XML declaration, CRLF line ends,
processing instructions, an ``xsl:stylesheet`` root with the ClinicalDocument
inside (the first ``{urn:hl7-org:v3}ClinicalDocument`` is read), non-LOINC
type codes, times without seconds, a wrong NIR key (a warning).

Raised (906): XML that is not well-formed or declares entities, no
ClinicalDocument, no ClinicalDocument/id. Listed in ``refusals``: no INS
among the patient ids (903), an INS matricule that is incomplete or lacks
the identity traits (905), a level-1 body that cannot be decoded (906).

Times without an offset are read as Europe/Paris (the CI-SIS requires an
offset; the few French files without one are local time) and said in
``warnings``.
"""

from __future__ import annotations

import binascii
from datetime import date, datetime
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from dmp_bridge.cda_crosscheck import cross_check
from dmp_bridge.cda_model import (
    LEVEL1_TEMPLATE,
    CdaHeader,
    CdaName,
    CdaOrganisation,
    CdaPatient,
    CdaPerson,
    InstanceId,
    NamePart,
)
from dmp_bridge.cda_narrative import narrative_html
from dmp_bridge.cda_xml import HL7, find_clinical_document, q
from dmp_bridge.errors import INS_INCOMPLETE, INS_MISSING, XdmError, other
from dmp_bridge.hl7v2 import Coded, dtm_has_offset, parse_dtm
from dmp_bridge.ins import INS_OIDS, InsCheck, check_ins, is_ins_oid

__all__ = ["HL7", "cross_check", "find_clinical_document", "narrative_html", "read_cda_header"]

PARIS = ZoneInfo("Europe/Paris")


def _text(element: Element | None) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _ii(element: Element | None) -> InstanceId | None:
    if element is None or (element.get("root") is None and element.get("extension") is None):
        return None
    return InstanceId(root=element.get("root"), extension=element.get("extension"))


def _cd(element: Element | None) -> Coded | None:
    if element is None or not element.get("code"):
        return None
    return Coded(
        code=element.get("code", ""),
        scheme=element.get("codeSystem"),
        display=element.get("displayName"),
    )


def _name(element: Element | None) -> CdaName | None:
    if element is None:
        return None
    parts = []
    for child in element:
        kind = child.tag.rsplit("}", 1)[-1]
        value = _text(child)
        if kind in ("family", "given", "prefix", "suffix") and value:
            parts.append(NamePart(kind=kind, value=value, qualifier=child.get("qualifier")))
    if not parts and _text(element):
        parts.append(NamePart(kind="text", value=_text(element) or ""))
    return CdaName(parts=tuple(parts))


class _HeaderReader:
    """Collects header facts, refusals and warnings from one ClinicalDocument element."""

    def __init__(self, document: Element) -> None:
        self.doc = document
        self.warnings: list[str] = []
        self.refusals: list[XdmError] = []

    def time(self, element: Element | None, label: str) -> datetime | None:
        value = element.get("value") if element is not None else None
        if not value:
            return None
        parsed = parse_dtm(value, PARIS)
        if parsed is None:
            self.warnings.append(f"{label} {value!r} is not an HL7 time; ignored.")
        elif not dtm_has_offset(value) and len(value) > 8:
            self.warnings.append(f"{label} {value!r} has no UTC offset; read as Europe/Paris.")
        return parsed

    def organisation(self, element: Element | None) -> CdaOrganisation | None:
        if element is None:
            return None
        return CdaOrganisation(id=_ii(element.find(q("id"))), name=_text(element.find(q("name"))))

    def person(self, holder: Element | None, entity: str, label: str) -> CdaPerson | None:
        if holder is None:
            return None
        assigned = holder.find(q(entity))
        if assigned is None:
            return None
        return CdaPerson(
            id=_ii(assigned.find(q("id"))),
            name=_name(assigned.find(q("assignedPerson/name"))),
            time=self.time(holder.find(q("time")), f"{label}/time"),
            code=_cd(assigned.find(q("code"))),
            organisation=self.organisation(assigned.find(q("representedOrganization"))),
        )

    def patient(self) -> CdaPatient:
        role = self.doc.find(q("recordTarget/patientRole"))
        if role is None:
            self.refusals.append(
                XdmError(
                    INS_MISSING,
                    "The CDA document has no recordTarget/patientRole, hence no INS.",
                    "Le document CDA n'a pas de recordTarget/patientRole, donc pas d'INS.",
                )
            )
            return CdaPatient(ids=(), ins=None, names=(), birth_time=None, gender=None, telecoms=())
        ids = tuple(i for i in map(_ii, role.findall(q("id"))) if i is not None)
        person = role.find(q("patient"))
        names = tuple(
            n
            for n in (_name(e) for e in (person.findall(q("name")) if person is not None else []))
            if n is not None
        )
        birth = person.find(q("birthTime")) if person is not None else None
        gender = _cd(person.find(q("administrativeGenderCode"))) if person is not None else None
        patient = CdaPatient(
            ids=ids,
            ins=None,
            names=names,
            birth_time=_birth_date(birth),
            gender=gender.code if gender else None,
            telecoms=tuple(
                t.get("value", "") for t in role.findall(q("telecom")) if t.get("value")
            ),
        )
        ins = self.judge_ins(patient)
        return CdaPatient(
            ids=patient.ids,
            ins=ins,
            names=patient.names,
            birth_time=patient.birth_time,
            gender=patient.gender,
            telecoms=patient.telecoms,
        )

    def judge_ins(self, patient: CdaPatient) -> InsCheck | None:
        """903 when no INS, 905 when incomplete (matricule or traits); a wrong key is flagged."""
        candidates = [i for i in patient.ids if is_ins_oid(i.root)]
        if not candidates or not candidates[0].extension:
            listed = ", ".join(f"{i.root}/{i.extension}" for i in patient.ids) or "none"
            self.refusals.append(
                XdmError(
                    INS_MISSING,
                    f"The CDA document carries no INS among its patient ids ({listed}); an INS is "
                    f"an id under {', '.join(INS_OIDS)}.",
                    f"Le document CDA ne porte pas d'INS parmi les identifiants du patient "
                    f"({listed}) ; un INS est un identifiant sous {', '.join(INS_OIDS)}.",
                )
            )
            return None
        chosen = candidates[0]
        assert chosen.root is not None and chosen.extension is not None
        verdict = check_ins(chosen.extension, chosen.root)
        if not verdict.complete:
            self.refusals.append(
                XdmError(
                    INS_INCOMPLETE,
                    f"The CDA INS matricule {chosen.extension!r} is not the 15 characters of a NIR "
                    "with its key.",
                    f"Le matricule INS {chosen.extension!r} du document CDA n'est pas fait des 15 "
                    "caractères d'un NIR avec sa clé.",
                )
            )
            return verdict
        if not verdict.key_ok:
            self.warnings.append(
                f"INS {chosen.extension} has a wrong NIR key (flagged, not refused)."
            )
        name = patient.names[0] if patient.names else None
        missing = [
            label
            for label, present in (
                ("birth name", name and name.birth_family),
                ("first names", name and name.birth_given),
                ("birth date", patient.birth_time),
                ("sex", patient.gender),
            )
            if not present
        ]
        if missing:
            self.refusals.append(
                XdmError(
                    INS_INCOMPLETE,
                    f"The CDA INS {chosen.extension} comes without the identity traits: "
                    f"{', '.join(missing)} missing.",
                    f"L'INS {chosen.extension} du document CDA n'a pas tous ses traits d'identité "
                    f"(manquant : {', '.join(missing)}).",
                )
            )
        return verdict

    def body(self) -> tuple[int, str | None, bytes | None]:
        """(level, media type, decoded level-1 content)."""
        non_xml = self.doc.find(q("component/nonXMLBody"))
        if non_xml is None:
            if self.doc.find(q("component/structuredBody")) is None:
                self.refusals.append(
                    other(
                        "The CDA document has no body (neither structuredBody nor nonXMLBody).",
                        "Le document CDA n'a pas de corps (ni structuredBody ni nonXMLBody).",
                    )
                )
                return 0, None, None
            return 3, None, None
        text = non_xml.find(q("text"))
        media = text.get("mediaType") if text is not None else None
        if text is None or text.find(q("reference")) is not None:
            self.refusals.append(
                other(
                    "The level-1 CDA body has no inline content (a reference "
                    "or nothing); it cannot be shown.",
                    "Le corps CDA de niveau 1 n'a pas de contenu intégré "
                    "(une référence ou rien) ; il ne peut être affiché.",
                )
            )
            return 1, media, None
        raw = "".join(text.itertext())
        if text.get("representation", "TXT").upper() != "B64":
            return 1, media, raw.encode("utf-8")
        try:
            content = binascii.a2b_base64("".join(raw.split()).encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            self.refusals.append(
                other(
                    f"The level-1 CDA body is not valid base64 ({exc}).",
                    f"Le corps CDA de niveau 1 n'est pas du base64 valide ({exc}).",
                )
            )
            return 1, media, None
        if media == "application/pdf" and not content.startswith(b"%PDF-"):
            self.refusals.append(
                other(
                    "The level-1 CDA body says application/pdf but its content is not a PDF.",
                    "Le corps CDA de niveau 1 annonce application/pdf mais son contenu n'est pas "
                    "un PDF.",
                )
            )
            return 1, media, None
        return 1, media, content


def _birth_date(element: Element | None) -> date | None:
    value = (element.get("value") or "") if element is not None else ""
    parsed = parse_dtm(value[:8]) if len(value) >= 8 else None
    return parsed.date() if parsed else None


def read_cda_header(data: bytes) -> CdaHeader:
    """Read the header facts of a CDA R2 document (raise XdmError 906 if unreadable)."""
    doc = find_clinical_document(data)
    reader = _HeaderReader(doc)
    document_id = _ii(doc.find(q("id")))
    if document_id is None or document_id.root is None:
        raise other(
            "The CDA document has no ClinicalDocument/id root.",
            "Le document CDA n'a pas de ClinicalDocument/id avec root.",
        )
    code_element = doc.find(q("code"))
    version = doc.find(q("versionNumber"))
    version_value = version.get("value", "") if version is not None else ""
    templates = tuple(i for i in map(_ii, doc.findall(q("templateId"))) if i is not None)
    effective_time = reader.time(doc.find(q("effectiveTime")), "effectiveTime")
    level, media, embedded = reader.body()
    if level == 3 and any(t.root == LEVEL1_TEMPLATE for t in templates):
        reader.warnings.append(
            "templateId 1.3.6.1.4.1.19376.1.2.20 (level 1) on a structuredBody document."
        )
    replaces = None
    for related in doc.findall(q("relatedDocument")):
        if related.get("typeCode") == "RPLC":
            replaces = _ii(related.find(q("parentDocument/id")))
    authors = tuple(
        p
        for p in (reader.person(a, "assignedAuthor", "author") for a in doc.findall(q("author")))
        if p is not None
    )
    custodian = reader.organisation(
        doc.find(q("custodian/assignedCustodian/representedCustodianOrganization"))
    )
    language = _cd(doc.find(q("languageCode")))
    return CdaHeader(
        document_id=document_id,
        set_id=_ii(doc.find(q("setId"))),
        version_number=int(version_value) if version_value.isdigit() else None,
        code=_cd(code_element),
        translations=tuple(
            c for c in map(_cd, code_element.findall(q("translation"))) if c is not None
        )
        if code_element is not None
        else (),
        title=_text(doc.find(q("title"))),
        effective_time=effective_time,
        confidentiality=_cd(doc.find(q("confidentialityCode"))),
        language_code=language.code if language is not None else None,
        template_ids=templates,
        patient=reader.patient(),
        authors=authors,
        custodian=custodian,
        legal_authenticator=reader.person(
            doc.find(q("legalAuthenticator")), "assignedEntity", "legalAuthenticator"
        ),
        replaces=replaces,
        healthcare_facility_code=_cd(
            doc.find(q("componentOf/encompassingEncounter/location/healthCareFacility/code"))
        ),
        level=level,
        body_media_type=media,
        refusals=tuple(reader.refusals),
        warnings=tuple(reader.warnings),
        embedded=embedded,
    )
