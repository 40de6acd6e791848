"""Cross-check a document's METADATA.XML entry against its own CDA header.

A mismatch is an :class:`XdmError`: 904 for the patient's INS, 903 when one
side has no INS at all, 906 for everything else (uniqueId, typeCode,
creationTime, author, replacement). Each sentence names both values.
"""

from __future__ import annotations

import re
from datetime import datetime

from dmp_bridge.cda_model import CdaHeader
from dmp_bridge.errors import INS_MISMATCH, INS_MISSING, XdmError, other
from dmp_bridge.xdm_model import DocumentEntry

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LOINC = "2.16.840.1.113883.6.1"
_SCHEME_ALIASES = {"LOINC": LOINC, "urn:oid:" + LOINC: LOINC}


def _same_unique_id(xds: str, cda: str) -> bool:
    """Equal, or equal but for the case of a UUID root (UUIDs are case-insensitive)."""
    if xds == cda:
        return True
    xds_root, _, xds_ext = xds.partition("^")
    cda_root, _, cda_ext = cda.partition("^")
    return (
        bool(_UUID.match(cda_root))
        and xds_root.lower() == cda_root.lower()
        and (xds_ext == cda_ext)
    )


def _scheme(value: str | None) -> str | None:
    value = (value or "").removeprefix("urn:oid:")
    return _SCHEME_ALIASES.get(value, value) or None


def cross_check(entry: DocumentEntry, header: CdaHeader) -> list[XdmError]:
    """Every disagreement between an XDS document entry and its CDA header."""
    errors: list[XdmError] = []
    name = f"document entry {entry.entry_uuid!r}"
    cda_unique = header.document_id.xds_unique_id or ""
    if entry.unique_id is not None and not _same_unique_id(entry.unique_id, cda_unique):
        errors.append(
            other(
                f"The {name} has uniqueId {entry.unique_id!r} but its CDA ClinicalDocument/id is "
                f"{cda_unique!r}.",
                f"La fiche {entry.entry_uuid!r} a l'uniqueId {entry.unique_id!r} mais le "
                f"ClinicalDocument/id du CDA est {cda_unique!r}.",
            )
        )
    errors.extend(_check_ins(entry, header, name))
    if entry.type_code is not None and header.code is not None:
        candidates = (header.code, *header.translations)
        if not any(
            c.code == entry.type_code.code and _scheme(c.scheme) == _scheme(entry.type_code.scheme)
            for c in candidates
        ):
            errors.append(
                other(
                    f"The {name} has typeCode {entry.type_code.code} "
                    f"({entry.type_code.scheme}) but "
                    f"the CDA code is {header.code.code} ({header.code.scheme}).",
                    f"La fiche {entry.entry_uuid!r} a le typeCode {entry.type_code.code} "
                    f"({entry.type_code.scheme}) mais le code du CDA est {header.code.code} "
                    f"({header.code.scheme}).",
                )
            )
    if agreed_creation_time(entry, header) is None:
        errors.append(_creation_time_mismatch(entry, header, name))
    errors.extend(_check_author(entry, header, name))
    if entry.action == "C" and header.replaces is None:
        errors.append(
            other(
                f"The {name} asks for a replacement (action C) but its CDA has no "
                "relatedDocument typeCode=RPLC naming the document replaced.",
                f"La fiche {entry.entry_uuid!r} demande un remplacement (action C) mais son "
                f"CDA n'a "
                "pas de relatedDocument typeCode=RPLC désignant le document remplacé.",
            )
        )
    return errors


def agreed_creation_time(entry: DocumentEntry, header: CdaHeader | None) -> datetime | None:
    """The creation instant METADATA.XML and the CDA agree on; None when they disagree.

    XDS creationTime is UTC (ITI TF-3 §4.2.3.1.7, the DTM type; the DMP's
    homologation requirement EX_2.1-1110 asks the sender to convert the CDA's
    local time), and a time with an offset is read as it says. The ANS CDA-to-XDM transform
    copies the CDA's effectiveTime digits without their offset, i.e. local
    time: an offset-less creationTime whose digits are those of the CDA's
    effectiveTime as written (its own offset, or Europe/Paris when it has
    none, as ``read_cda_header`` reads it) is that copy, and the CDA's instant
    is the one filed. Any other difference is a mismatch.
    """
    created, effective = entry.creation_time, header.effective_time if header else None
    if created is None or effective is None:
        return created or effective
    if created == effective:
        return created
    if entry.creation_time_local is not None and (
        entry.creation_time_local == effective.replace(tzinfo=None)
    ):
        return effective
    return None


def _creation_time_mismatch(entry: DocumentEntry, header: CdaHeader, name: str) -> XdmError:
    assert entry.creation_time is not None and header.effective_time is not None
    created, effective = entry.creation_time.isoformat(), header.effective_time.isoformat()
    if entry.creation_time_local is None:
        return other(
            f"The {name} has creationTime {created} but the CDA effectiveTime is {effective} "
            "(not the same instant).",
            f"La fiche {entry.entry_uuid!r} a le creationTime {created} mais l'effectiveTime "
            f"du CDA est {effective} (instants différents).",
        )
    local = entry.creation_time_local.isoformat()
    return other(
        f"The {name} has creationTime {local} without offset but the CDA effectiveTime is "
        f"{effective}: neither read as UTC nor as the CDA's local time is it the same instant.",
        f"La fiche {entry.entry_uuid!r} a le creationTime {local} sans décalage mais "
        f"l'effectiveTime du CDA est {effective} : ni en UTC ni en heure locale du CDA ce "
        "n'est le même instant.",
    )


def _check_ins(entry: DocumentEntry, header: CdaHeader, name: str) -> list[XdmError]:
    xds_ins = entry.ins
    cda_ins = header.patient.ins
    if xds_ins is None or cda_ins is None:
        side = "METADATA.XML" if xds_ins is None else "the CDA header"
        side_fr = "METADATA.XML" if xds_ins is None else "l'en-tête CDA"
        return [
            XdmError(
                INS_MISSING,
                f"The INS of the {name} cannot be compared: {side} carries none.",
                f"L'INS de la fiche {entry.entry_uuid!r} ne peut être comparé : {side_fr} n'en "
                "porte pas.",
            )
        ]
    if (xds_ins.matricule.upper(), xds_ins.oid) != (cda_ins.matricule.upper(), cda_ins.oid):
        return [
            XdmError(
                INS_MISMATCH,
                f"The {name} is for INS {xds_ins.matricule} ({xds_ins.oid}) but its CDA for INS "
                f"{cda_ins.matricule} ({cda_ins.oid}).",
                f"La fiche {entry.entry_uuid!r} concerne l'INS {xds_ins.matricule} ({xds_ins.oid}) "
                f"mais son CDA l'INS {cda_ins.matricule} ({cda_ins.oid}).",
            )
        ]
    return []


def _check_author(entry: DocumentEntry, header: CdaHeader, name: str) -> list[XdmError]:
    """The XDS author's idNat must be one of the CDA authors' (when both sides have one)."""
    xds_ids = {a.id_nat for a in entry.authors if a.id_nat}
    cda_ids = {a.id_nat for a in header.authors if a.id_nat}
    if not xds_ids or not cda_ids or xds_ids & cda_ids:
        return []
    return [
        other(
            f"The {name} has author idNat {', '.join(sorted(xds_ids))} but the CDA authors are "
            f"{', '.join(sorted(cda_ids))}.",
            f"La fiche {entry.entry_uuid!r} a l'auteur idNat {', '.join(sorted(xds_ids))} mais les "
            f"auteurs du CDA sont {', '.join(sorted(cda_ids))}.",
        )
    ]
