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

from mss.policy.decision import OK, Decision, allow, refuse_http

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
ACCEPTED_NAMES_EN = {"application/pdf": "PDF", "image/jpeg": "JPEG image", "image/png": "PNG image"}
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


def _no(status: int, reason: str, sentence: str, sentence_fr: str) -> Decision:
    return refuse_http(status, reason, sentence, sentence_fr)


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


def decide_title(title: str) -> Decision:
    """A document needs a title: present, not too long, without control characters."""
    text = title.strip()
    if not text:
        return _no(
            400,
            "title_missing",
            "Give the document a title",
            "Donnez un titre au document, par exemple « Ordonnance du Dr Martin ».",
        )
    if len(text) > MAX_TITLE_LENGTH:
        return _no(
            400,
            "title_too_long",
            f"The title is too long: {MAX_TITLE_LENGTH} characters at most",
            f"Le titre est trop long : {MAX_TITLE_LENGTH} caractères au plus.",
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        return _no(
            400,
            "title_invalid",
            "The title contains invisible characters: type it again",
            "Le titre contient des caractères invisibles : retapez-le.",
        )
    return OK


def decide_file(
    filename: str, declared_type: str, size: int, head: bytes, max_size: int = MAX_PATIENT_DOCUMENT
) -> Decision:
    """A non-empty PDF, JPEG or PNG within ``max_size`` whose bytes match its name and declared
    type."""
    if size <= 0 and not filename:
        return _no(
            400, "file_missing", "Choose the file to add", "Choisissez le fichier à ajouter."
        )
    if size <= 0:
        return _no(
            400,
            "file_empty",
            "The chosen file is empty: nothing was added",
            "Le fichier choisi est vide : rien n'a été ajouté.",
        )
    if size > max_size:
        limit = max_size // (1024 * 1024)
        return _no(
            413,
            "file_too_large",
            f"The file is larger than the limit of {limit} MB",
            f"Le fichier dépasse la taille maximale de {limit} Mo : "
            "choisissez un fichier plus léger (par exemple un PDF plutôt qu'une photo).",
        )
    named = _type_of_name(filename)
    declared = declared_type.split(";", 1)[0].strip().lower()
    if named is None or (declared not in _GENERIC_TYPES and declared not in ACCEPTED_TYPES):
        return _no(
            415,
            "type_not_accepted",
            "This type of file is not accepted: only PDF documents and JPEG or PNG images "
            "can be added to the record",
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
        what_en = (
            f"it is not a real {ACCEPTED_NAMES_EN[claimed]}"
            if claimed
            else "it is neither a PDF nor a JPEG or PNG image"
        )
        what = (
            f"ce n'est pas {ACCEPTED_TYPES[claimed][0]}"
            if claimed
            else "ce n'est ni un PDF ni une image JPEG ou PNG"
        )
        return _no(
            415,
            "content_mismatch",
            f"The content of the file does not match its type: {what_en}; nothing was added",
            f"Le contenu du fichier ne correspond pas à son type : {what}. Rien n'a été ajouté.",
        )
    return allow(mime_type=detected)


def decide_patient_upload(facts: UploadFacts, max_size: int = MAX_PATIENT_DOCUMENT) -> Decision:
    """May this file be added to the record as the patient's own document, with this title and
    type?"""
    titled = decide_title(facts.title)
    if not titled:
        return titled
    if facts.type_key not in PATIENT_DOCUMENT_TYPES:
        return _no(
            400,
            "type_missing",
            "Choose the type of the document in the list",
            "Choisissez le type du document dans la liste.",
        )
    decision = decide_file(facts.filename, facts.declared_type, facts.size, facts.head, max_size)
    if not decision:
        return decision
    code, label = PATIENT_DOCUMENT_TYPES[facts.type_key]
    return allow(mime_type=decision.mime_type, type_code=code, type_label=label)


UNKNOWN_PROFESSIONAL = _no(
    422,
    "unknown_professional",
    "This professional is not in the directory: search for them again by name or RPPS number",
    "Ce professionnel n'a pas été trouvé dans l'annuaire : cherchez-le de nouveau par son nom "
    "ou son numéro RPPS.",
)


def decide_consent_target(in_directory: bool, *, withdrawing: bool, recorded: bool) -> Decision:
    """Authorising, blocking or naming a professional needs one the directory knows; withdrawing
    an authorisation or a block needs that choice recorded (the directory may have dropped the
    professional since: the choice can still be withdrawn)."""
    if recorded if withdrawing else in_directory:
        return OK
    return UNKNOWN_PROFESSIONAL


def decide_treating_doctor(name: str, profession_code: str, profession_label: str) -> Decision:
    """Only a médecin can be named médecin traitant (an unknown profession is given the benefit)."""
    if profession_code and profession_code != MEDICAL_DOCTOR:
        return _no(
            422,
            "not_a_doctor",
            f"Only a doctor can be the patient's treating doctor: {name} is not one; "
            "authorise them to read the record instead",
            f"Seul un médecin peut être votre médecin traitant : "
            f"{name} est {profession_label.lower()}. Vous pouvez l'autoriser à consulter "
            "votre dossier à la place.",
        )
    return OK


def decide_message_attachment(
    facts: UploadFacts, already_filed: bool, max_size: int = MAX_PATIENT_DOCUMENT
) -> Decision:
    """A received message's attachment goes to the record only as a real PDF, and only once."""
    if already_filed:
        return _no(
            409,
            "already_filed",
            "This attachment is already in the record",
            "Cette pièce jointe est déjà dans votre dossier.",
        )
    decision = decide_patient_upload(facts, max_size)
    if decision and decision.mime_type != "application/pdf":
        return _no(
            415,
            "not_a_pdf",
            "Only a PDF attachment can be added to the record from a message",
            "Seule une pièce jointe PDF peut être ajoutée au dossier depuis un message.",
        )
    return decision
