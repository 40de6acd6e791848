"""Per-document judgements on XDS metadata: the patient's INS and the DMP visibility flags.

They never raise: each returns the refusals (XdmError values) that make one
document unfileable, leaving the rest of the package readable.
"""

from __future__ import annotations

from dmp_bridge.errors import INS_INCOMPLETE, INS_MISSING, OTHER, XdmError, other
from dmp_bridge.hl7v2 import Coded, Cx
from dmp_bridge.ins import INS_OIDS, InsCheck, check_ins, is_ins_oid
from dmp_bridge.xdm_model import CONFIDENTIALITY_FR, FRENCH_FLAGS


def judge_patient_id(
    label: str, obj_id: str, patient: Cx, source_id: str | None
) -> tuple[InsCheck | None, list[XdmError]]:
    """Judge an entry's patientId as an INS: 903 none, 905 incomplete, 906 malformed.

    A wrong NIR key is not a refusal: the caller flags it (``InsCheck.key_ok``).
    """
    source = (
        f"XDSDocumentEntry.patientId {patient.raw!r}"
        if patient.raw
        else "XDSDocumentEntry.patientId"
    )
    if patient.id is None:
        also_en = f"; sourcePatientId is {source_id!r}" if source_id else ""
        also_fr = f" ; sourcePatientId vaut {source_id!r}" if source_id else ""
        return None, [
            XdmError(
                INS_MISSING,
                f"The {label} has no patient identifier ({source}: {patient.problem}{also_en}), "
                "hence no INS.",
                f"La fiche {obj_id!r} n'a pas d'identifiant patient ({source} vide ou "
                f"'null'{also_fr}), donc pas d'INS.",
            )
        ]
    if patient.problem:
        return None, [
            XdmError(
                OTHER,
                f"The {label} has a malformed {source}: {patient.problem}.",
                f"La fiche {obj_id!r} a un {source} mal formé (attendu ID^^^&OID&ISO).",
            )
        ]
    if not is_ins_oid(patient.authority_oid):
        return None, [
            XdmError(
                INS_MISSING,
                f"The {label} has {source}, which is not an INS: its authority "
                f"{patient.authority_oid} is none of {', '.join(INS_OIDS)}.",
                f"La fiche {obj_id!r} a {source}, qui n'est pas un INS : l'autorité "
                f"{patient.authority_oid} n'est aucun de {', '.join(INS_OIDS)}.",
            )
        ]
    assert patient.id is not None and patient.authority_oid is not None
    verdict = check_ins(patient.id, patient.authority_oid)
    if not verdict.complete:
        return verdict, [
            XdmError(
                INS_INCOMPLETE,
                f"The {label} has the INS matricule {patient.id!r}, which is not the 15 "
                "characters of a NIR with its key.",
                f"La fiche {obj_id!r} a le matricule INS {patient.id!r}, qui n'est pas fait des "
                "15 caractères d'un NIR avec sa clé.",
            )
        ]
    return verdict, []


def confidentiality_refusals(label: str, obj_id: str, codes: tuple[Coded, ...]) -> list[XdmError]:
    """A DMP visibility flag must be spelt and coded exactly, or the document is refused.

    Ignoring a mis-coded flag would file a document visible to people it was
    meant to be hidden from, so a near miss is refused rather than guessed.
    """
    refusals = []
    for code in codes:
        if code.code in FRENCH_FLAGS and code.scheme != CONFIDENTIALITY_FR:
            refusals.append(
                other(
                    f"The {label} has the confidentiality code {code.code} under the scheme "
                    f"{code.scheme!r}; DMP visibility flags use {CONFIDENTIALITY_FR}.",
                    f"La fiche {obj_id!r} a le code de confidentialité {code.code} dans le système "
                    f"{code.scheme!r} ; les masquages DMP utilisent {CONFIDENTIALITY_FR}.",
                )
            )
        elif code.code == "INVISIBLE_REP_LEGAUX":
            refusals.append(
                other(
                    f"The {label} has the confidentiality code INVISIBLE_REP_LEGAUX, the HL7v2 OBX "
                    "spelling; XDS metadata must use INVISIBLE_REPRESENTANTS_LEGAUX "
                    f"({CONFIDENTIALITY_FR}).",
                    f"La fiche {obj_id!r} a le code de confidentialité INVISIBLE_REP_LEGAUX, "
                    "l'orthographe des OBX HL7v2 ; les métadonnées XDS utilisent "
                    f"INVISIBLE_REPRESENTANTS_LEGAUX ({CONFIDENTIALITY_FR}).",
                )
            )
    return refusals
