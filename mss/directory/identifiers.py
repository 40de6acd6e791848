"""French health identifiers: INS, RPPS/idNat, ADELI, FINESS, TRE_G15 professions, addresses.

Each ``normalise_*`` function returns the canonical form of a value or
raises ``InvalidInput`` with a sentence naming what is wrong. A wrong
check key raises ``WrongCheckKey`` (a subclass), so a caller that trusts
its source, such as an extract of the national directory, can tell a
mistyped number from a malformed one.
"""

from __future__ import annotations

import re

from mss.errors import InvalidInput


class WrongCheckKey(InvalidInput):
    """The value is well formed but its check key does not hold."""


# TRE_G15-ProfessionSante (OID 1.2.250.1.71.1.2.7), version 20250328120000 of the ANS
# terminology server. Codes 35-39 and 93 are deprecated there but still found in old data.
PROFESSIONS: dict[str, str] = {
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-Lunetier",
    "31": "Assistant dentaire",
    "32": "Physicien médical",
    "35": "Aide-soignant",
    "36": "Ambulancier",
    "37": "Auxiliaire de puériculture",
    "38": "Préparateur en pharmacie hospitalière",
    "39": "Préparateur en pharmacie (officine)",
    "40": "Chirurgien-Dentiste",
    "50": "Sage-Femme",
    "60": "Infirmier",
    "69": "Infirmier psychiatrique",
    "70": "Masseur-Kinésithérapeute",
    "80": "Pédicure-Podologue",
    "81": "Orthoprothésiste",
    "82": "Podo-Orthésiste",
    "83": "Orthopédiste-Orthésiste",
    "84": "Oculariste",
    "85": "Epithésiste",
    "86": "Technicien de laboratoire médical",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "93": "Psychologue",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur ERM",
}
TRE_G15_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
)

# Identifier systems: the first of each set is the one the hub writes.
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # idNat of a professional
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"  # idNat of a structure: 1 + FINESS, 3 + SIRET...
RPPS_SYSTEMS = ("https://rpps.esante.gouv.fr", "http://rpps.esante.gouv.fr")
ADELI_SYSTEMS = ("https://adeli.esante.gouv.fr", "http://adeli.sante.gouv.fr")
FINESS_SYSTEMS = (
    "https://finess.esante.gouv.fr",
    "http://finess.sante.gouv.fr",
    "urn:oid:1.2.250.1.71.4.2.2.1",
)

_INS = re.compile(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}")
INS_PATTERN = _INS  # also what the logs redact (mss.log_format)
_FINESS = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9A-Z]{7}")
_ADELI = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9]{7}")
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _compact(value: str) -> str:
    """Upper-case and drop the spaces, dots and dashes people type inside numbers."""
    return re.sub(r"[\s.\-]", "", str(value)).upper()


def ins_key(first13: str) -> int:
    """The NIR key of 13 characters: 97 - (number mod 97), Corsica 2A/2B read as 19/18."""
    nir = first13.upper()
    corsica = {"2A": "19", "2B": "18"}.get(nir[5:7])
    if corsica:
        nir = nir[:5] + corsica + nir[7:]
    return 97 - int(nir) % 97


def normalise_ins(value: str) -> str:
    """An INS matricule: 13-character NIR (or NIA) followed by its 2-digit key."""
    ins = _compact(value)
    if len(ins) != 15:
        raise InvalidInput(
            f"INS {value!r} has {len(ins)} characters; an INS has 15 "
            "(13 for the NIR and 2 for its key)"
        )
    if not _INS.fullmatch(ins):
        raise InvalidInput(
            f"INS {value!r} must be digits only, except 2A or 2B "
            "as the department of birth (characters 6 and 7)"
        )
    if ins[0] not in "12345678":
        raise InvalidInput(f"INS {value!r} starts with {ins[0]}; the first digit (sex) is 1 to 8")
    expected = ins_key(ins[:13])
    if int(ins[13:]) != expected:
        raise WrongCheckKey(
            f"INS {value!r} has key {ins[13:]} but its NIR gives key "
            f"{expected:02d} (97 - NIR mod 97): a digit is probably mistyped"
        )
    return ins


def luhn_valid(digits: str) -> bool:
    """True when the Luhn checksum of a string of digits holds (last digit is the key)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def normalise_rpps(value: str) -> str:
    """An RPPS number: 11 digits whose Luhn key holds."""
    rpps = _compact(value)
    if not (len(rpps) == 11 and rpps.isdigit()):
        raise InvalidInput(f"RPPS number {value!r} must be exactly 11 digits")
    if not luhn_valid(rpps):
        raise WrongCheckKey(
            f"RPPS number {value!r} fails its Luhn check (last digit): a digit is probably mistyped"
        )
    return rpps


def normalise_adeli(value: str) -> str:
    """An ADELI number: department (2 digits, 2A or 2B) then 7 digits.

    Its last digit is a key, but its rule is not published; the format alone is checked.
    """
    adeli = _compact(value)
    if not _ADELI.fullmatch(adeli):
        raise InvalidInput(
            f"ADELI number {value!r} must be 9 characters: a department "
            "(2 digits, 2A or 2B) then 7 digits"
        )
    return adeli


def normalise_finess(value: str, *, check_key: bool = True) -> str:
    """A FINESS number: 9 characters, department first, Luhn key last when all digits.

    FINESS numbers of Corsica start with 2A/2B and a few old ones carry letters; no
    published rule gives their key, so only their format is checked.
    """
    finess = _compact(value)
    if not _FINESS.fullmatch(finess):
        raise InvalidInput(
            f"FINESS number {value!r} must be 9 characters: a department "
            "(2 digits, 2A or 2B) then 7 digits or capital letters"
        )
    if check_key and finess.isdigit() and not luhn_valid(finess):
        raise WrongCheckKey(
            f"FINESS number {value!r} fails its Luhn check (last digit): "
            "a digit is probably mistyped"
        )
    return finess


def normalise_id_nat(value: str, *, check_key: bool = True) -> str:
    """A professional's idNat: 8 + RPPS, 0 + ADELI, or 3 + FINESS + / + local id.

    A bare 11-digit RPPS is accepted and returned as 8 + RPPS.
    """
    raw = str(value).strip()
    if "/" in raw:
        return _structure_id_nat(value, raw, check_key)
    compact = _compact(raw)
    if len(compact) == 11 and compact.isdigit():
        compact = "8" + compact
    if compact.startswith("8") and len(compact) == 12:
        try:
            return "8" + normalise_rpps(compact[1:])
        except WrongCheckKey:
            if check_key:
                raise WrongCheckKey(
                    f"idNat {value!r}: RPPS {compact[1:]} fails its Luhn "
                    "check (last digit): a digit is probably mistyped"
                ) from None
            return compact
        except InvalidInput:
            pass
    if compact.startswith("0") and len(compact) == 10:
        try:
            return "0" + normalise_adeli(compact[1:])
        except InvalidInput as exc:
            raise InvalidInput(f"idNat {value!r} starts with 0 (ADELI) but the {exc}") from None
    raise InvalidInput(
        f"idNat {value!r} is neither 8 followed by an 11-digit RPPS number, "
        "nor 0 followed by a 9-character ADELI number, nor an 11-digit RPPS"
    )


def _structure_id_nat(value: str, raw: str, check_key: bool) -> str:
    """3 + FINESS + '/' + the structure's own id for its staff (no RPPS or ADELI)."""
    head, _, local = raw.partition("/")
    if not (
        head.startswith("3")
        and len(head) == 10
        and local
        and len(raw) <= 16
        and re.fullmatch(r"[0-9A-Za-z]+", local)
    ):
        raise InvalidInput(
            f"idNat {value!r}: an idNat with '/' is 3, a 9-character FINESS, "
            "'/' and the structure's own id, 16 characters at most"
        )
    return "3" + normalise_finess(head[1:], check_key=check_key) + "/" + local


def profession_label(code: str) -> str:
    """The French label of a TRE_G15 profession code."""
    return PROFESSIONS[normalise_profession_code(code)]


def normalise_profession_code(code: str) -> str:
    """A TRE_G15 profession code (two digits)."""
    text = str(code).strip()
    if text not in PROFESSIONS:
        raise InvalidInput(
            f"profession code {code!r} is not in TRE_G15 (10 médecin, "
            "21 pharmacien, 60 infirmier, 70 masseur-kinésithérapeute...)"
        )
    return text


def normalise_domain(value: str) -> str:
    """A mail domain in lower case, each label checked (ASCII letters, digits, dashes)."""
    domain = str(value).strip().rstrip(".").lower()
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidInput(
            f"{value!r} is not a mail domain (labels of letters, digits and dashes "
            "separated by dots, such as hopital.mssante.fr)"
        )
    return domain


def normalise_address(value: str) -> str:
    """A mail address in lower case, without a ``mailto:`` prefix; MSSanté addresses are ASCII."""
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    address = text.lower()
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise InvalidInput(f"{value!r} is not a mail address (expected name@domain)")
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise InvalidInput(
            f"{value!r} is not a mail address: the part before @ may hold letters, "
            "digits, dots (not doubled, not at the ends) and -_+ at most 64 long"
        )
    try:
        domain = normalise_domain(domain)
    except InvalidInput:
        raise InvalidInput(f"{value!r} is not a mail address: {domain!r} is not a domain") from None
    if len(local) + 1 + len(domain) > 254:
        raise InvalidInput(f"{value!r} is longer than the 254 characters a mail address may have")
    return f"{local}@{domain}"


def normalise_phone(value: str) -> str:
    """A phone number in E.164 (+33...); French 10-digit numbers starting with 0 are converted."""
    text = re.sub(r"[\s.\-()/]", "", str(value))
    if text.startswith("00"):
        text = "+" + text[2:]
    if re.fullmatch(r"0[1-9][0-9]{8}", text):
        text = "+33" + text[1:]
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", text):
        raise InvalidInput(
            f"phone number {value!r} is neither a French number (10 digits "
            "starting with 0) nor an international one (+ and up to 15 digits)"
        )
    return text


def normalise_dn(value: str) -> str:
    """A certificate subject DN as the whitelist writes it: ``CN=...,OU=...,O=...,C=FR``.

    Spaces around RDNs and attribute types are dropped, types upper-cased, and a DN
    written country first (OpenSSL's ``/C=FR/O=...`` or ``C=FR, O=...``) is reversed;
    values are kept as they are.
    """
    text = str(value).strip()
    separator = r"(?<!\\)/" if text.startswith("/") else r"(?<!\\),"
    parts = [part.strip() for part in re.split(separator, text) if part.strip()]
    rdns = []
    for part in parts:
        kind, equals, text = part.partition("=")
        if not equals or not kind.strip():
            raise InvalidInput(f"{value!r} is not a distinguished name (TYPE=value,TYPE=value...)")
        rdns.append(f"{kind.strip().upper()}={text.strip()}")
    if len(rdns) > 1 and rdns[0].startswith("C=") and not rdns[-1].startswith("C="):
        rdns.reverse()
    return ",".join(rdns)
