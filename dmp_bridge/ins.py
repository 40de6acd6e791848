"""The INS (Identifiant National de Santé): its OIDs and the NIR matricule check.

The matricule is the 13-character NIR followed by its 2-digit key,
``key = 97 - (NIR mod 97)``, where the Corsican departments 2A and 2B count
as 19 and 18. About one official ANS example in ten carries a wrong key: a
wrong key is *flagged* (``key_ok`` False), never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INS_NIR_OID = "1.2.250.1.213.1.4.8"
INS_NIR_TEST_OID = "1.2.250.1.213.1.4.10"
INS_NIR_DEMO_OID = "1.2.250.1.213.1.4.13"  # seen in official examples (INS-NIR of demonstration)
INS_OIDS: dict[str, str] = {
    INS_NIR_OID: "INS-NIR",
    INS_NIR_TEST_OID: "INS-NIR test",
    INS_NIR_DEMO_OID: "INS-NIR demonstration",
}

_MATRICULE = re.compile(r"^[1-478]\d{4}(\d{2}|2A|2B)\d{6}\d{2}$")


@dataclass(frozen=True)
class InsCheck:
    """The verdict on one INS matricule."""

    matricule: str
    oid: str
    complete: bool  # 15 characters of the NIR shape
    key_ok: bool | None  # None when the matricule is not complete


def is_ins_oid(oid: str | None) -> bool:
    """True for the three OIDs under which an INS matricule is published."""
    return oid in INS_OIDS


def nir_key(nir13: str) -> int:
    """The 2-digit key of a 13-character NIR (Corsica 2A/2B handled)."""
    dept = nir13[5:7].upper()
    digits = nir13[:5] + {"2A": "19", "2B": "18"}.get(dept, dept) + nir13[7:]
    return 97 - int(digits) % 97


def check_ins(matricule: str, oid: str) -> InsCheck:
    """Check the shape and key of an INS matricule."""
    value = matricule.strip().upper()
    if not _MATRICULE.match(value):
        return InsCheck(matricule=matricule, oid=oid, complete=False, key_ok=None)
    return InsCheck(
        matricule=matricule, oid=oid, complete=True, key_ok=nir_key(value[:13]) == int(value[13:])
    )
