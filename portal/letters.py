"""The activation letter: a one-page PDF written by hand (Helvetica, WinAnsi), no PDF library."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mss.directory.models import Patient, PatientState
from portal.clock import PARIS

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN, LEADING = 56, 16
OPPOSABLE = (PatientState.CREATED, PatientState.OPPOSITION_WINDOW)


def letter_lines(patient: Patient, code: str, url: str) -> list[tuple[int, str]]:
    """The letter as (font size, line) pairs."""
    deadline = patient.opposition_deadline
    until = deadline.astimezone(PARIS).strftime("%d/%m/%Y") if deadline else "la date indiquée"
    born = f"Né(e) le {patient.birth_date:%d/%m/%Y}" if patient.birth_date else ""
    opposing = [
        (11, f"Si vous ne souhaitez pas de ce compte, vous pouvez vous y opposer jusqu'au {until}"),
        (11, "avec le même code, sur :"),
        (12, f"{url}/opposition"),
        (11, f"Sans opposition de votre part, votre compte sera ouvert le {until}."),
    ]
    already_open = [  # a minor's space handed over, an opposition withdrawn: no window any more
        (11, "Votre compte est déjà ouvert. Si vous n'en voulez pas, vous pourrez le clôturer"),
        (11, "depuis votre espace, rubrique « Mon compte »."),
    ]
    return [
        (18, "Votre messagerie santé"),
        (11, ""),
        (11, patient.display_name),
        (11, born),
        (11, ""),
        (11, "Madame, Monsieur,"),
        (11, ""),
        (11, "Un compte de messagerie sécurisée de santé a été créé pour vous. Vos médecins,"),
        (
            11,
            "pharmaciens et établissements de santé pourront vous y écrire en toute "
            "confidentialité.",
        ),
        (11, ""),
        (13, f"Votre numéro INS : {patient.ins}"),
        (13, f"Votre code d'activation : {code}"),
        (11, ""),
        (11, "Pour activer votre compte, rendez-vous sur :"),
        (12, f"{url}/activation"),
        (11, "puis saisissez votre numéro INS, ce code et le mot de passe de votre choix."),
        (11, ""),
        *(opposing if patient.state in OPPOSABLE else already_open),
        (11, ""),
        (11, "Ce code est personnel : ne le communiquez à personne. Aucun professionnel ni"),
        (11, "aucun conseiller ne vous le demandera jamais."),
    ]


def _pdf_text(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def render_pdf(lines: list[tuple[int, str]]) -> bytes:
    """A minimal valid PDF 1.4: catalog, one page, Helvetica, one text stream, xref table."""
    stream = bytearray(b"BT\n")
    y = PAGE_HEIGHT - MARGIN
    for size, text in lines:
        stream += b"/F1 %d Tf 1 0 0 1 %d %d Tm (" % (size, MARGIN, y) + _pdf_text(text) + b") Tj\n"
        y -= LEADING + max(0, size - 11)
    stream += b"ET\n"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 4 0 "
        b"R >> >> "
        b"/Contents 5 0 R >>" % (PAGE_WIDTH, PAGE_HEIGHT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + bytes(stream) + b"endstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def letter_path(out_dir: Path, patient: Patient) -> Path:
    return out_dir / f"activation-{patient.ins}.pdf"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the code is a secret
    with os.fdopen(fd, "wb") as out:
        out.write(data)


async def write_letter(out_dir: Path, patient: Patient, code: str, url: str) -> Path:
    """Write the patient's letter as a PDF in ``out_dir`` (mode 0600); returns its path."""
    path = letter_path(out_dir, patient)
    await asyncio.to_thread(_write_private, path, render_pdf(letter_lines(patient, code, url)))
    return path
