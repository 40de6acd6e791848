"""What a patient (or a guardian) may add to the record from the portal, and whom they may name
médecin traitant.

The portal reads the facts (the file's first bytes, the type the browser
declared, the size, the title and the type chosen in the list); this
module decides and gives the sentence shown on refusal. The record's
consent rules themselves are in ``mss.policy.consent``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

MAX_PATIENT_DOCUMENT = 10 * 1024 * 1024
MAX_TITLE_LENGTH = 200

# The short list offered to the patient: form value -> (LOINC code, French label).
PATIENT_DOCUMENT_TYPES: dict[str, tuple[str, str]] = {
    "ordonnance": ("57833-6", "Ordonnance"),
    "biologie": ("11502-2", "Résultats d'analyses biologiques"),
    "imagerie": ("18748-4", "Compte rendu d'imagerie"),
    "consultation": ("11488-4", "Compte rendu de consultation"),
    "vaccination": ("11369-6", "Vaccinations"),
    "autre": ("", "Autre document"),
}

# Accepted media types: "ce n'est pas ..." in French, the bytes every such file starts with,
# file name extensions.
ACCEPTED_TYPES: dict[str, tuple[str, bytes, tuple[str, ...]]] = {
    "application/pdf": ("un vrai PDF", b"%PDF-", (".pdf",)),
    "image/jpeg": ("une vraie image JPEG", b"\xff\xd8\xff", (".jpg", ".jpeg")),
    "image/png": ("une vraie image PNG", b"\x89PNG\r\n\x1a\n", (".png",)),
}
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
MEDICAL_DOCTOR = "10"  # TRE_G15: Médecin


@dataclass(frozen=True)
class UploadFacts:
    """A file a patient wants to add: what the browser said and what its first bytes are."""

    filename: str
    declared_type: str
    size: int
    head: bytes  # the first bytes of the file (16 are enough)
    title: str
    type_key: str


@dataclass(frozen=True)
class DossierDecision:
    """Allowed (for a file: with the type the record stores) or refused with a French sentence."""

    allowed: bool
    status: int
    reason: str
    sentence_fr: str
    mime_type: str = ""
    type_code: str = ""
    type_label: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def _no(status: int, reason: str, sentence_fr: str) -> DossierDecision:
    return DossierDecision(False, status, reason, sentence_fr)


def detect_type(head: bytes) -> str | None:
    """The accepted media type these first bytes belong to, or None."""
    for mime_type, (_name, magic, _extensions) in ACCEPTED_TYPES.items():
        if head.startswith(magic):
            return mime_type
    return None


def _type_of_name(filename: str) -> str | None:
    """The media type a file name's extension claims ("" when it has none, None when unknown)."""
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    if "." not in name.strip("."):
        return ""
    extension = "." + name.rsplit(".", 1)[-1]
    for mime_type, (_name, _magic, extensions) in ACCEPTED_TYPES.items():
        if extension in extensions:
            return mime_type
    return None


def decide_title(title: str) -> DossierDecision | None:
    """A refusal when the title is missing, too long or holds control characters."""
    text = title.strip()
    if not text:
        return _no(
            400,
            "title_missing",
            "Donnez un titre au document, par exemple « Ordonnance du Dr Martin ».",
        )
    if len(text) > MAX_TITLE_LENGTH:
        return _no(
            400,
            "title_too_long",
            f"Le titre est trop long : {MAX_TITLE_LENGTH} caractères au plus.",
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        return _no(
            400, "title_invalid", "Le titre contient des caractères invisibles : retapez-le."
        )
    return None


def decide_file(
    filename: str, declared_type: str, size: int, head: bytes, max_size: int = MAX_PATIENT_DOCUMENT
) -> DossierDecision:
    """A non-empty PDF, JPEG or PNG within ``max_size`` whose bytes match its name and declared
    type."""
    if size <= 0 and not filename:
        return _no(400, "file_missing", "Choisissez le fichier à ajouter.")
    if size <= 0:
        return _no(400, "file_empty", "Le fichier choisi est vide : rien n'a été ajouté.")
    if size > max_size:
        limit = max_size // (1024 * 1024)
        return _no(
            413,
            "file_too_large",
            f"Le fichier dépasse la taille maximale de {limit} Mo : "
            "choisissez un fichier plus léger (par exemple un PDF plutôt qu'une photo).",
        )
    named = _type_of_name(filename)
    declared = declared_type.split(";", 1)[0].strip().lower()
    if named is None or (declared not in _GENERIC_TYPES and declared not in ACCEPTED_TYPES):
        return _no(
            415,
            "type_not_accepted",
            "Ce type de fichier n'est pas accepté : seuls les "
            "documents PDF et les images JPEG ou PNG peuvent être ajoutés à votre dossier.",
        )
    detected = detect_type(head)
    claimed = named or (declared if declared in ACCEPTED_TYPES else "")
    if (
        detected is None
        or (claimed and claimed != detected)
        or (declared in ACCEPTED_TYPES and declared != detected)
    ):
        what = (
            f"ce n'est pas {ACCEPTED_TYPES[claimed][0]}"
            if claimed
            else "ce n'est ni un PDF ni une image JPEG ou PNG"
        )
        return _no(
            415,
            "content_mismatch",
            f"Le contenu du fichier ne correspond pas à son type : {what}. Rien n'a été ajouté.",
        )
    return DossierDecision(True, 200, "ok", "Accepté", mime_type=detected)


def decide_patient_upload(
    facts: UploadFacts, max_size: int = MAX_PATIENT_DOCUMENT
) -> DossierDecision:
    """May this file be added to the record as the patient's own document, with this title and
    type?"""
    refused = decide_title(facts.title)
    if refused is not None:
        return refused
    if facts.type_key not in PATIENT_DOCUMENT_TYPES:
        return _no(400, "type_missing", "Choisissez le type du document dans la liste.")
    decision = decide_file(facts.filename, facts.declared_type, facts.size, facts.head, max_size)
    if not decision:
        return decision
    code, label = PATIENT_DOCUMENT_TYPES[facts.type_key]
    return DossierDecision(
        True, 200, "ok", "Accepté", mime_type=decision.mime_type, type_code=code, type_label=label
    )


def decide_treating_doctor(
    name: str, profession_code: str, profession_label: str
) -> DossierDecision:
    """Only a médecin can be named médecin traitant (an unknown profession is given the benefit)."""
    if profession_code and profession_code != MEDICAL_DOCTOR:
        return _no(
            422,
            "not_a_doctor",
            f"Seul un médecin peut être votre médecin traitant : "
            f"{name} est {profession_label.lower()}. Vous pouvez l'autoriser à consulter "
            "votre dossier à la place.",
        )
    return DossierDecision(True, 200, "ok", "Accepté")


def decide_message_attachment(
    facts: UploadFacts, already_filed: bool, max_size: int = MAX_PATIENT_DOCUMENT
) -> DossierDecision:
    """A received message's attachment goes to the record only as a real PDF, and only once."""
    if already_filed:
        return _no(409, "already_filed", "Cette pièce jointe est déjà dans votre dossier.")
    decision = decide_patient_upload(facts, max_size)
    if decision and decision.mime_type != "application/pdf":
        return _no(
            415,
            "not_a_pdf",
            "Seule une pièce jointe PDF peut être ajoutée au dossier depuis un message.",
        )
    return decision
