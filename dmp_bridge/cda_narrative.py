"""Render the human-readable narrative of a CDA document as simple, escaped HTML.

Only section titles and ``section/text`` narrative blocks are rendered (never
``entry`` data). Every text is escaped; the only attributes written are
``colspan``/``rowspan`` (digits) and ``href`` (http, https, mailto). The
portal sanitises the result again with nh3: this is a second line, not the
only one. A level-1 document has no narrative here (its PDF is offered
instead), except a plain-text body, shown in ``<pre>``.
"""

from __future__ import annotations

import html
from xml.etree.ElementTree import Element

from dmp_bridge.cda_xml import HL7, find_clinical_document
from dmp_bridge.errors import XdmError, other

# CDA narrative element -> HTML element (None: keep the children, drop the element)
_MAP: dict[str, str | None] = {
    "paragraph": "p",
    "item": "li",
    "table": "table",
    "thead": "thead",
    "tbody": "tbody",
    "tfoot": "tfoot",
    "tr": "tr",
    "th": "th",
    "td": "td",
    "caption": "caption",
    "sub": "sub",
    "sup": "sup",
    "content": "span",
    "footnote": "small",
    "footnoteRef": None,
    "colgroup": None,
    "col": None,
    "renderMultiMedia": None,
}
_STYLE = {"bold": "strong", "italics": "em", "underline": "u", "emphasis": "em"}
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
MAX_DEPTH = 64  # rendering recurses; a hostile document could nest thousands of levels


def _local(element: Element) -> str:
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _span(value: str | None) -> str:
    return str(int(value)) if value and value.isdigit() and 0 < int(value) < 1000 else ""


def _too_deep() -> XdmError:
    return other(
        f"The CDA narrative nests more than {MAX_DEPTH} levels; refused.",
        f"La partie narrative du CDA a plus de {MAX_DEPTH} niveaux d'imbrication ; refusée.",
    )


def _render(element: Element, out: list[str], in_table: bool = False, depth: int = 0) -> None:
    """Append the HTML of one narrative element (its tail is written by the caller)."""
    if depth > MAX_DEPTH:
        raise _too_deep()
    name = _local(element)
    if name == "br":
        out.append("<br>")
        return
    tag: str | None
    if name == "list":
        tag = "ol" if (element.get("listType") or "").lower() == "ordered" else "ul"
    elif name == "linkHtml":
        href = (element.get("href") or "").strip()
        tag = "a" if href.lower().startswith(_SAFE_SCHEMES) else "span"
    elif name == "caption" and not in_table:
        tag = "strong"
    elif name == "content":
        styles = [
            _STYLE[s.lower()]
            for s in (element.get("styleCode") or "").split()
            if s.lower() in _STYLE
        ]
        tag = styles[0] if styles else "span"
    else:
        tag = _MAP.get(name)
    attributes = ""
    if tag == "a":
        attributes = f' href="{html.escape(element.get("href", "").strip(), quote=True)}"'
    elif tag in ("td", "th"):
        for attr in ("colspan", "rowspan"):
            if _span(element.get(attr)):
                attributes += f' {attr}="{_span(element.get(attr))}"'
    if tag:
        out.append(f"<{tag}{attributes}>")
    if element.text:
        out.append(html.escape(element.text))
    for child in element:
        _render(child, out, in_table or name == "table", depth + 1)
        if child.tail:
            out.append(html.escape(child.tail))
    if tag:
        out.append(f"</{tag}>")


def _section(section: Element, depth: int, out: list[str]) -> None:
    if depth > MAX_DEPTH:
        raise _too_deep()
    heading = f"h{min(depth + 1, 6)}"
    title = section.find(f"{{{HL7}}}title")
    out.append("<section>")
    if title is not None and "".join(title.itertext()).strip():
        out.append(
            f"<{heading}>{html.escape(' '.join(''.join(title.itertext()).split()))}</{heading}>"
        )
    text = section.find(f"{{{HL7}}}text")
    if text is not None:
        out.append("<div>")
        _render(text, out)
        out.append("</div>")
    for child in section.findall(f"{{{HL7}}}component/{{{HL7}}}section"):
        _section(child, depth + 1, out)
    out.append("</section>")


def narrative_from_document(document: Element) -> str:
    """The narrative HTML of a parsed ClinicalDocument element."""
    out: list[str] = []
    body = document.find(f"{{{HL7}}}component/{{{HL7}}}structuredBody")
    if body is not None:
        for section in body.findall(f"{{{HL7}}}component/{{{HL7}}}section"):
            _section(section, 1, out)
        return "".join(out)
    text = document.find(f"{{{HL7}}}component/{{{HL7}}}nonXMLBody/{{{HL7}}}text")
    if (
        text is not None
        and (text.get("representation") or "TXT").upper() == "TXT"
        and (text.get("mediaType") or "text/plain") == "text/plain"
    ):
        return f"<pre>{html.escape(''.join(text.itertext()))}</pre>"
    return ""


def narrative_html(data: bytes) -> str:
    """Parse a CDA document safely and return its narrative as simple escaped HTML.

    Raises XdmError 906 when the document is unreadable or nests absurdly deep.
    """
    return narrative_from_document(find_clinical_document(data))
