"""Parse untrusted XML with defusedxml, turning every failure into a precise 906.

DTDs, entity declarations (billion laughs) and external references (XXE) are
refused, and so is nesting deeper than ``MAX_XML_DEPTH`` elements. Input is checked to be UTF-8
first when it claims to be (or says
nothing), so a broken encoding is reported with its byte offset rather than
as an obscure "invalid token".
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import defusedxml.ElementTree as DefusedET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from dmp_bridge.errors import XdmError, other
from mss.xml_depth import MAX_XML_DEPTH

BOM = b"\xef\xbb\xbf"
_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


class _TooDeep(Exception):
    pass


class _BoundedTreeBuilder(TreeBuilder):
    """ElementTree's builder that stops a document nesting deeper than ``MAX_XML_DEPTH``."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0

    def start(self, tag: Any, attrs: Any) -> Element:
        self._depth += 1
        if self._depth > MAX_XML_DEPTH:
            raise _TooDeep
        return super().start(tag, attrs)

    def end(self, tag: Any) -> Element:
        self._depth -= 1
        return super().end(tag)


def strip_bom_and_space(data: bytes) -> bytes:
    """Drop a UTF-8 BOM and leading whitespace (some senders write a blank line first)."""
    data = data.removeprefix(BOM)
    return data.lstrip(b" \t\r\n")


def declared_encoding(data: bytes) -> str | None:
    """The encoding named in the XML declaration, lower-cased, if any."""
    match = _DECLARED_ENCODING.match(strip_bom_and_space(data))
    return match.group(1).decode("ascii").lower() if match else None


def parse_xml(data: bytes, what: str) -> Element:
    """Parse ``data`` (named ``what`` in sentences, e.g. 'METADATA.XML'); raise XdmError 906."""
    body = strip_bom_and_space(data)
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise other(
            f"{what} is encoded in UTF-16; only UTF-8 is accepted.",
            f"{what} est encodé en UTF-16 ; seul l'UTF-8 est accepté.",
        )
    encoding = declared_encoding(body)
    if encoding in (None, "utf-8", "utf8"):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise other(
                f"{what} is not valid UTF-8 (byte {exc.start} of the content: "
                f"{body[exc.start : exc.start + 1]!r}).",
                f"{what} n'est pas de l'UTF-8 valide (octet {exc.start} du contenu : "
                f"{body[exc.start : exc.start + 1]!r}).",
            ) from exc
    parser = DefusedET.DefusedXMLParser(
        target=_BoundedTreeBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        return parser.close()
    except _TooDeep:
        raise other(
            f"{what} nests its elements more than {MAX_XML_DEPTH} levels deep; refused.",
            f"{what} imbrique ses éléments sur plus de {MAX_XML_DEPTH} niveaux ; refusé.",
        ) from None
    except DTDForbidden:
        raise _classify_dtd(body, what) from None
    except (EntitiesForbidden, ExternalReferenceForbidden) as exc:
        raise _entity_error(exc, what) from None
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        message = str(exc).split(":")[0]
        raise other(
            f"{what} is not well-formed XML: {message} (line {line}, column {column + 1}).",
            f"{what} n'est pas un XML bien formé : {message} (ligne {line}, colonne {column + 1}).",
        ) from None
    except (LookupError, ValueError):  # encoding="UTFe8" (unknown), "shift_jis" (multi-byte); last:
        # defusedxml's errors are ValueErrors too
        raise other(
            f"{what} declares the encoding {encoding!r}, which cannot be read; only UTF-8 "
            "is accepted.",
            f"{what} déclare l'encodage {encoding!r}, illisible ; seul l'UTF-8 est accepté.",
        ) from None


def _classify_dtd(body: bytes, what: str) -> XdmError:
    """Say whether the refused DTD declares entities, and which, for a precise sentence."""
    try:
        DefusedET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (EntitiesForbidden, ExternalReferenceForbidden) as exc:
        return _entity_error(exc, what)
    except (ParseError, DTDForbidden):
        pass
    return other(
        f"{what} contains a document type declaration (<!DOCTYPE>); DTDs are refused.",
        f"{what} contient une déclaration de type de document (<!DOCTYPE>) ; les DTD "
        "sont refusées.",
    )


def _entity_error(exc: Exception, what: str) -> XdmError:
    name = getattr(exc, "name", "?")
    sysid = getattr(exc, "sysid", None)
    if sysid:
        return other(
            f"{what} declares the external entity {name!r} pointing at {sysid!r}; external "
            "entities are refused.",
            f"{what} déclare l'entité externe {name!r} pointant vers {sysid!r} ; les entités "
            "externes sont refusées.",
        )
    return other(
        f"{what} declares the entity {name!r}; entity declarations are refused (entity "
        "expansion attack).",
        f"{what} déclare l'entité {name!r} ; les déclarations d'entités sont refusées "
        "(attaque par expansion d'entités).",
    )
