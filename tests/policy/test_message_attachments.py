"""Which attachments of a message the portal withholds from the patient or a guardian (pure
policy)."""

from __future__ import annotations

import pytest

from mss.policy.consent import ViewerKind
from mss.policy.message_attachments import (
    CONFIDENTIALITY_FR,
    WITHHELD_SENTENCE_FR,
    AttachmentFacts,
    PackagedDocument,
    PackageFacts,
    RecordFlags,
    decide_withheld_attachments,
)

PATIENT, GUARDIAN = ViewerKind.PATIENT, ViewerKind.GUARDIAN
ZIP = AttachmentFacts("2", "IHE_XDM.zip", "application/zip")
PDF = AttachmentFacts("3", "CR.pdf", "application/pdf")
PHOTO = AttachmentFacts("4", "photo.jpg", "image/jpeg")
ALL = (ZIP, PDF, PHOTO)
HIDDEN = (("N", "2.16.840.1.113883.5.25"), ("INVISIBLE_PATIENT", CONFIDENTIALITY_FR))
NOT_FOR_GUARDIANS = (("INVISIBLE_REPRESENTANTS_LEGAUX", CONFIDENTIALITY_FR),)


def _package(*documents: PackagedDocument, unreadable: bool = False) -> PackageFacts:
    return PackageFacts(documents, unreadable)


def _parts(
    viewer: ViewerKind, package: PackageFacts | None, attachments: tuple[AttachmentFacts, ...] = ALL
) -> set[str]:
    return set(decide_withheld_attachments(viewer, attachments, package).parts)


def test_a_document_hidden_from_the_patient_withholds_the_package_and_every_pdf() -> None:
    decision = decide_withheld_attachments(PATIENT, ALL, _package(PackagedDocument(HIDDEN)))
    assert set(decision.parts) == {"2", "3"}  # the photo is not named after the document
    assert decision.sentence_fr == WITHHELD_SENTENCE_FR
    assert "INVISIBLE" not in decision.sentence_fr and "Compte" not in decision.sentence_fr


@pytest.mark.parametrize("viewer", [PATIENT, GUARDIAN])
def test_visible_documents_withhold_nothing(viewer: ViewerKind) -> None:
    package = _package(
        PackagedDocument((("N", "2.16.840.1.113883.5.25"), ("MASQUE_PS", CONFIDENTIALITY_FR)))
    )
    decision = decide_withheld_attachments(viewer, ALL, package)
    assert not decision and decision.sentence_fr == ""


def test_no_package_withholds_nothing_whatever_the_facts() -> None:
    assert _parts(PATIENT, _package(PackagedDocument(HIDDEN)), (PDF, PHOTO)) == set()
    assert _parts(PATIENT, None) == set()


def test_hidden_from_guardians_only() -> None:
    package = _package(PackagedDocument(NOT_FOR_GUARDIANS))
    assert _parts(GUARDIAN, package) == {"2", "3"}
    assert _parts(PATIENT, package) == set()


def test_the_records_flags_win_once_revealed() -> None:
    revealed = PackagedDocument(HIDDEN, RecordFlags(False, False))
    assert _parts(PATIENT, _package(revealed)) == set()
    still_hidden = PackagedDocument((), RecordFlags(True, False))
    assert _parts(PATIENT, _package(still_hidden)) == {"2", "3"}
    for_guardians = PackagedDocument((), RecordFlags(False, True))
    assert _parts(GUARDIAN, _package(for_guardians)) == {"2", "3"}
    assert _parts(PATIENT, _package(for_guardians)) == set()


def test_one_hidden_document_among_visible_ones_is_enough() -> None:
    assert _parts(PATIENT, _package(PackagedDocument(), PackagedDocument(HIDDEN))) == {"2", "3"}


@pytest.mark.parametrize(
    "codes",
    [
        (("INVISIBLE_PATIENT", "2.16.840.1.113883.5.25"),),  # a French flag under another scheme
        (("INVISIBLE_REP_LEGAUX", CONFIDENTIALITY_FR),),  # the HL7v2 spelling
        (("MASQUE_PS", "1.2.3"),),
    ],
)
def test_a_mis_coded_flag_is_not_guessed(codes: tuple[tuple[str, str], ...]) -> None:
    assert _parts(PATIENT, _package(PackagedDocument(codes))) == {"2", "3"}
    assert _parts(GUARDIAN, _package(PackagedDocument(codes))) == {"2", "3"}


def test_an_unreadable_package_may_hold_anything() -> None:
    assert _parts(PATIENT, _package(unreadable=True)) == {"2", "3"}
    assert _parts(PATIENT, _package(PackagedDocument(), unreadable=True)) == {"2", "3"}


def test_renderings_and_copies_are_withheld_by_type_extension_or_name() -> None:
    attachments = (
        ZIP,
        AttachmentFacts("3", "scan", "application/x-pdf"),
        AttachmentFacts("4", "copie.PDF", "application/octet-stream"),
        AttachmentFacts("5", "autre.zip", "application/octet-stream"),
        AttachmentFacts("6", "DOC0001.XML", "application/octet-stream"),
        AttachmentFacts("7", "Sérologie VIH.html", "text/html"),
        AttachmentFacts("8", "1.2.250.1.999.1.1.20240101^42.txt", "text/plain"),
        AttachmentFacts("9", "ordonnance.jpg", "image/jpeg"),
    )
    hidden = PackagedDocument(
        HIDDEN,
        title="Sérologie VIH",
        unique_id="1.2.250.1.999.1.1.20240101^42",
        file_name="DOC0001.XML",
    )
    assert _parts(PATIENT, _package(hidden), attachments) == {"2", "3", "4", "5", "6", "7", "8"}


def test_the_package_is_recognised_by_its_name_in_any_case_and_type() -> None:
    odd = AttachmentFacts("2", "ihe_xdm.ZIP", "application/octet-stream")
    assert _parts(PATIENT, _package(PackagedDocument(HIDDEN)), (odd, PHOTO)) == {"2"}


def test_only_for_the_patient_side() -> None:
    with pytest.raises(ValueError):
        decide_withheld_attachments(ViewerKind.PROFESSIONAL, ALL, _package())
