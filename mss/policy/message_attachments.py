"""Which attachments of a message the portal withholds because they carry a document hidden in the
DMP.

A professional may mail a patient an XDM package (``IHE_XDM.zip``) whose
documents are flagged INVISIBLE_PATIENT (hidden from the patient until a
professional reveals it) or INVISIBLE_REPRESENTANTS_LEGAUX (hidden from
the guardians of a minor). The DMP hides them; the message must not hand
them over either. Withheld: the package itself, and every attachment that
may render a hidden document. MSSanté senders put one PDF per CDA next to
the zip, but its name follows no rule the hub can check (``CR.pdf`` for a
"Compte rendu de consultation"), so the rule is conservative: every PDF,
zip and XML attachment of such a message, and any other attachment named
after a hidden document (title, uniqueId or file name in the package).

The caller loads the facts: for each document, the confidentiality codes
METADATA.XML gives and, when the document is in the patient's record, its
flags there (the record's word wins: a professional may have revealed it).
A package that cannot be read may hold anything, so it counts as hiding a
document; so does a visibility flag spelt or coded wrong, as the filing
refuses it rather than guessing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from mss.policy.consent import (
    ConsentFacts,
    DocumentFacts,
    ViewerFacts,
    ViewerKind,
    can_see,
)

CONFIDENTIALITY_FR = "1.2.250.1.213.1.1.4.13"  # TRE_A07: the DMP's visibility flags
INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
INVISIBLE_REPRESENTANTS_LEGAUX = "INVISIBLE_REPRESENTANTS_LEGAUX"
_FLAG_NEAR_MISSES = frozenset(
    {"MASQUE_PS", INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX, "INVISIBLE_REP_LEGAUX"}
)
XDM_FILE_NAME = "ihe_xdm.zip"
_RENDERING_TYPES = frozenset(
    {
        "application/pdf",
        "application/x-pdf",
        "application/zip",
        "application/x-zip-compressed",
        "text/xml",
        "application/xml",
        "application/hl7-v3+xml",
        "application/hl7-cda+xml",
    }
)
_RENDERING_EXTENSIONS = (".pdf", ".zip", ".xml")

WITHHELD_SENTENCE_FR = (
    "Certains documents de ce message ne sont pas encore disponibles dans votre espace."
)
WITHHELD_SENTENCE = "Some documents of this message are not available in your space yet."


@dataclass(frozen=True)
class RecordFlags:
    """A document's visibility flags as the patient's record holds them now."""

    invisible_to_patient: bool
    invisible_to_legal_representatives: bool


@dataclass(frozen=True)
class PackagedDocument:
    """One document of a message's XDM package."""

    confidentiality: tuple[tuple[str, str], ...] = ()  # (code, codingScheme) from METADATA.XML
    record: RecordFlags | None = None  # the record's flags when it holds the document
    title: str = ""
    unique_id: str = ""
    file_name: str = ""


@dataclass(frozen=True)
class PackageFacts:
    """What the message's XDM packages hold; ``unreadable`` when one could not be read."""

    documents: tuple[PackagedDocument, ...] = ()
    unreadable: bool = False


@dataclass(frozen=True)
class AttachmentFacts:
    """One attachment as the message page lists it."""

    part: str
    filename: str
    content_type: str


@dataclass(frozen=True)
class WithheldAttachments:
    """The parts not listed nor served (404 like a missing part), and the page's neutral
    sentence."""

    parts: frozenset[str] = frozenset()
    sentence: str = ""
    sentence_fr: str = ""

    def __bool__(self) -> bool:
        return bool(self.parts)


NOTHING_WITHHELD = WithheldAttachments()


def is_package(attachment: AttachmentFacts) -> bool:
    """An attachment named ``IHE_XDM.zip`` (any case), whatever type it declares."""
    return attachment.filename.strip().lower() == XDM_FILE_NAME


def carries_package(attachments: Iterable[AttachmentFacts]) -> bool:
    return any(is_package(a) for a in attachments)


def _flags(document: PackagedDocument) -> DocumentFacts:
    if document.record is not None:
        return DocumentFacts(
            invisible_to_patient=document.record.invisible_to_patient,
            invisible_to_legal_representatives=document.record.invisible_to_legal_representatives,
        )
    codes = {code for code, scheme in document.confidentiality if scheme == CONFIDENTIALITY_FR}
    near_miss = any(
        code in _FLAG_NEAR_MISSES
        and (scheme != CONFIDENTIALITY_FR or code == "INVISIBLE_REP_LEGAUX")
        for code, scheme in document.confidentiality
    )
    return DocumentFacts(
        invisible_to_patient=INVISIBLE_PATIENT in codes or near_miss,
        invisible_to_legal_representatives=INVISIBLE_REPRESENTANTS_LEGAUX in codes or near_miss,
    )


def hidden_from(viewer: ViewerKind, document: PackagedDocument) -> bool:
    """Whether the consent engine would hide this document from the patient or their guardian."""
    return not can_see(ViewerFacts(viewer), ConsentFacts(), _flags(document))


def _key(text: str) -> str:
    """A name reduced to lower-case letters and digits (accents, spaces and punctuation dropped)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", folded)


def _stem(filename: str) -> str:
    name = filename.strip().rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


def _may_render(attachment: AttachmentFacts, names: set[str]) -> bool:
    lowered = attachment.filename.strip().lower()
    if attachment.content_type.lower() in _RENDERING_TYPES or lowered.endswith(
        _RENDERING_EXTENSIONS
    ):
        return True
    key = _key(_stem(attachment.filename))
    return bool(key) and key in names


def decide_withheld_attachments(
    viewer: ViewerKind, attachments: Iterable[AttachmentFacts], package: PackageFacts | None
) -> WithheldAttachments:
    """The attachments ``viewer`` (the patient, or a guardian acting for a minor) must not get."""
    if viewer is ViewerKind.PROFESSIONAL:
        raise ValueError("the portal's message page is for patients and their guardians")
    listed = list(attachments)
    if package is None or not carries_package(listed):
        return NOTHING_WITHHELD
    hidden = [d for d in package.documents if hidden_from(viewer, d)]
    if not hidden and not package.unreadable:
        return NOTHING_WITHHELD
    names = {_key(n) for d in hidden for n in (d.title, d.unique_id, _stem(d.file_name)) if _key(n)}
    parts = frozenset(a.part for a in listed if is_package(a) or _may_render(a, names))
    return WithheldAttachments(parts, WITHHELD_SENTENCE, WITHHELD_SENTENCE_FR)
