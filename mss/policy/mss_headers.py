"""The MSSanté ``X-MSS-CODECDA`` and ``X-MSS-INS`` headers, and the ``XDM/1.0/DDM`` subject.

Référentiel socle MSSanté #2 (v1.0.1) §3.8.1-3.8.2, on a message carrying CDA
documents inside an ``IHE_XDM`` archive:

- ``X-MSS-CODECDA``: the ``code`` of each CDA header (the CI-SIS document type),
  comma-separated (``34112-3,PRESC-BIO``); absent without a CDA;
- ``X-MSS-INS``: ``O`` when the archive carries a qualified INS (the matricule, its
  OID and the four traits: birth name, first given name, birth date, sex), else
  ``N``; absent without a CDA.

The subject of a "DMP compatible" message is ``XDM/1.0/DDM+<libellé> <NOM> <prénom>
<date>`` (IG transmission-document-cda-r2). Inbound, the headers are the sender's
claim about its package: a claim the package contradicts is an integration error
(``decide_mss_headers``), answered as any filing error (MDN or standard e-mail).
Everything here is pure: the DMP bridge gives the facts, read once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mss.policy.decision import OK, Decision, refuse

CODECDA = "X-MSS-CODECDA"
INS = "X-MSS-INS"
DDM_PREFIX = "XDM/1.0/DDM+"
INS_MISSING = 903  # the IG's applicationErrorCondition codes (error-codes page)
INS_INCOMPLETE = 905
OTHER = 906

_CODE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class PackageClaims:
    """The two headers as the sender wrote them (``None``: absent) and what its package holds."""

    codecda: str | None
    ins: str | None
    document_codes: tuple[str, ...]  # the ``code`` of each CDA header, in package order
    qualified_ins: bool  # some CDA carries a qualified INS
    ins_present: bool = False  # some CDA carries an INS matricule (qualified or not)


def codecda_values(value: str) -> tuple[str, ...]:
    """The codes of an ``X-MSS-CODECDA`` value (comma-separated, spaces around ignored)."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def ddm_label(subject: str) -> str | None:
    """The ``<libellé> <NOM> <prénom> <date>`` of an ``XDM/1.0/DDM+`` subject, else None."""
    text = " ".join(subject.split())
    if not text.upper().startswith(DDM_PREFIX):
        return None
    return text[len(DDM_PREFIX) :].strip() or None


def _refused(code: int, reason: str, sentence: str, sentence_fr: str) -> Decision:
    return refuse(550, "5.6.0", sentence, sentence_fr, reason=reason, code=code)


def decide_mss_headers(claims: PackageClaims) -> Decision:
    """May the package be filed, given what its X-MSS headers say of it?

    An absent header claims nothing (the headers are recent; older software omits them).
    ``X-MSS-CODECDA`` must name exactly the package's CDA types (order and repeats aside)
    and be well formed; ``X-MSS-INS`` must be ``O`` or ``N`` and true: ``O`` without a
    qualified INS is 903 when no CDA has an INS matricule (the IG: "INS non présent") and
    905 when one has it without its traits ("INS transmis n'est pas complet"); ``N``
    beside a qualified INS, a wrong type or a malformed value is 906 ("Autre").
    """
    if claims.codecda is not None:
        claimed = codecda_values(claims.codecda)
        bad = [c for c in claimed if not _CODE.fullmatch(c)]
        if not claimed or bad:
            return _refused(
                OTHER,
                "mss_codecda_malformed",
                f"The {CODECDA} header {claims.codecda!r} is not a comma-separated list of "
                "document type codes.",
                f"L'en-tête {CODECDA} {claims.codecda!r} n'est pas une liste de codes de type "
                "de document séparés par des virgules.",
            )
        if set(claimed) != set(claims.document_codes):
            found_en = ",".join(claims.document_codes) or "no CDA document"
            found = ",".join(claims.document_codes) or "aucun document CDA"
            return _refused(
                OTHER,
                "mss_codecda_mismatch",
                f"The {CODECDA} header says {','.join(claimed)} but the XDM package holds "
                f"{found_en}.",
                f"L'en-tête {CODECDA} annonce {','.join(claimed)} mais le paquet XDM contient "
                f"{found}.",
            )
    if claims.ins is not None:
        value = claims.ins.strip()
        if value not in ("O", "N"):
            return _refused(
                OTHER,
                "mss_ins_malformed",
                f"The {INS} header is {claims.ins!r}; it must be O or N.",
                f"L'en-tête {INS} vaut {claims.ins!r} ; il doit valoir O ou N.",
            )
        if value == "O" and not claims.qualified_ins and claims.ins_present:
            return _refused(
                INS_INCOMPLETE,
                "mss_ins_mismatch",
                f"The {INS} header says O (a qualified INS) but the INS of the package's CDA "
                "documents lacks some of its four identity traits.",
                f"L'en-tête {INS} annonce O (INS qualifiée) mais il manque à l'INS des documents "
                "CDA du paquet une partie de ses quatre traits d'identité.",
            )
        if value == "O" and not claims.qualified_ins:
            return _refused(
                INS_MISSING,
                "mss_ins_mismatch",
                f"The {INS} header says O (a qualified INS) but no CDA document of the "
                "package carries the INS with its four identity traits.",
                f"L'en-tête {INS} annonce O (INS qualifiée) mais aucun document CDA du paquet "
                "ne porte l'INS avec ses quatre traits d'identité.",
            )
        if value == "N" and claims.qualified_ins:
            return _refused(
                OTHER,
                "mss_ins_mismatch",
                f"The {INS} header says N (no qualified INS) but a CDA document of the "
                "package carries a qualified INS.",
                f"L'en-tête {INS} annonce N (pas d'INS qualifiée) mais un document CDA du "
                "paquet porte une INS qualifiée.",
            )
    return OK


def headers_to_write(document_codes: Iterable[str], qualified_ins: bool) -> list[tuple[str, str]]:
    """The two headers for mail the hub writes carrying those CDA documents; none without one."""
    codes = list(dict.fromkeys(c for c in document_codes if _CODE.fullmatch(c)))
    if not codes:
        return []
    return [(CODECDA, ",".join(codes)), (INS, "O" if qualified_ins else "N")]


def decide_ddm_subject(subject: str, packages: int) -> Decision:
    """A ``XDM/1.0/DDM+`` subject announces a DMP-compatible package: one must be attached.

    The hub answers a message so announced but carrying no ``IHE_XDM.zip`` with 906 (its
    sender's software believes it sent a document that nobody will file).
    """
    if packages or ddm_label(subject) is None:
        return OK
    return _refused(
        OTHER,
        "ddm_without_package",
        "The subject announces a DMP-compatible message (XDM/1.0/DDM+...) but no IHE_XDM.zip "
        "package is attached.",
        "L'objet annonce un message compatible DMP (XDM/1.0/DDM+…) mais aucun paquet "
        "IHE_XDM.zip n'est joint.",
    )
