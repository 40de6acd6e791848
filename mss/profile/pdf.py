"""The profile summary as a PDF/A-2B file the patient can hand to a professional.

fpdf2 writes the PDF/A parts (XMP metadata, sRGB output intent); the text
font is embedded, as PDF/A requires: DejaVu Sans from Debian's
``fonts-dejavu-core`` (or the file named by ``MSS_PDF_FONT``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF

from mss.errors import HubError
from mss.profile.models import ProfileItem
from mss.profile.store import CATEGORIES

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)
PARIS = ZoneInfo("Europe/Paris")
NOTICE = (
    "Informations déclarées par le patient dans son espace santé, non vérifiées par un "
    "professionnel de santé, sauf celles qu'un professionnel a inscrites (son nom est indiqué)."
)


class FontMissing(HubError):
    """No font to embed: PDF/A needs one."""


def font_files() -> tuple[Path, Path]:
    """The regular and bold TrueType fonts to embed."""
    chosen = os.environ.get("MSS_PDF_FONT")
    if chosen:
        return Path(chosen), Path(os.environ.get("MSS_PDF_FONT_BOLD", chosen))
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file():
            return regular, bold if bold.is_file() else regular
    raise FontMissing(
        "no font to embed in the PDF: install Debian's fonts-dejavu-core or set MSS_PDF_FONT"
    )


def _french_date(moment: dt.datetime) -> str:
    return moment.astimezone(PARIS).strftime("%d/%m/%Y à %H h %M")


def profile_pdf(
    *,
    name: str,
    birth_date: dt.date | None,
    ins: str,
    items: Mapping[str, Sequence[ProfileItem]],
    now: dt.datetime,
) -> bytes:
    """The summary: who, when, then one section per category with every item."""
    regular, bold = font_files()
    pdf = FPDF(format="A4", enforce_compliance="PDFA_2B")
    pdf.set_title(f"Profil médical de {name}")
    pdf.set_author(name)
    pdf.set_creator("Messagerie santé")
    pdf.set_lang("fr-FR")
    pdf.creation_date = now
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(width, 9, "Résumé de mon profil médical", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 11)
    born = f" · né(e) le {birth_date:%d/%m/%Y}" if birth_date else ""
    pdf.multi_cell(width, 6, f"{name}{born} · INS {ins}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(width, 6, f"Édité le {_french_date(now)}", new_x="LMARGIN", new_y="NEXT")
    for category, (title, _label) in CATEGORIES.items():
        pdf.ln(4)
        pdf.set_font("DejaVu", "B", 13)
        pdf.multi_cell(width, 8, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 11)
        rows = items.get(category, [])
        if not rows:
            pdf.multi_cell(width, 6, "Rien de renseigné.", new_x="LMARGIN", new_y="NEXT")
        for item in rows:
            line = f"• {item.label}" + (f" ({item.when})" if item.when else "")
            if item.author_kind == "professional":
                line += f" · inscrit par {item.author_name or item.author}"
            pdf.multi_cell(width, 6, line, new_x="LMARGIN", new_y="NEXT")
            if item.detail:
                pdf.set_x(pdf.l_margin + 5)
                pdf.multi_cell(width - 5, 6, item.detail, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(width, 5, NOTICE, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
