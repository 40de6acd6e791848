"""MSSanté integration errors (HL7v2 applicationErrorCondition 900-906).

Every refusal of the parsing layer is an :class:`XdmError` carrying one of the
codes below and a precise sentence, in English and in French; the filing layer
turns it into an MDN (``<code>^<libellé>^applicationErrorCondition``) or a
"standard e-mail" back to the sender.
"""

from __future__ import annotations

WRONG_VERSION = 900
AUTHOR_NOT_ALLOWED = 901
UNKNOWN_PATIENT = 902
INS_MISSING = 903
INS_MISMATCH = 904
INS_INCOMPLETE = 905
OTHER = 906

#: Official French labels (IG "transmission de documents CDA", error-codes.md).
LABELS_FR: dict[int, str] = {
    900: "Version du document incorrecte lors d'une demande de remplacement/suppression",
    901: "Auteur non autorisé à remplacer ou supprimer un document",
    902: "Identifiant patient inconnu",
    903: "INS non présent dans le document",
    904: "L'INS transmis ne correspond pas exactement à celui stocké dans la base du consommateur",
    905: "L'INS transmis n'est pas complet",
    906: "Erreur 'Autre'",
}

LABELS_EN: dict[int, str] = {
    900: "Wrong document version for a replacement or deletion",
    901: "Author not allowed to replace or delete the document",
    902: "Unknown patient identifier",
    903: "INS missing from the document",
    904: "The INS sent does not match the one on record",
    905: "The INS sent is incomplete",
    906: "Other error",
}


class XdmError(Exception):
    """A refusal with an MSSanté integration code (900-906) and a sentence a user understands."""

    def __init__(self, code: int, sentence: str, sentence_fr: str | None = None) -> None:
        if code not in LABELS_FR:
            raise ValueError(f"{code} is not an MSSanté integration error code (900-906)")
        super().__init__(f"{code}: {sentence}")
        self.code = code
        self.sentence = sentence
        self.sentence_fr = sentence_fr if sentence_fr is not None else LABELS_FR[code]

    @property
    def label_fr(self) -> str:
        """The official French label of the code, as written in an MDN."""
        return LABELS_FR[self.code]

    @property
    def label_en(self) -> str:
        """An English rendering of the official label."""
        return LABELS_EN[self.code]

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (golden files, HTTP problem details)."""
        return {"code": self.code, "sentence": self.sentence, "sentence_fr": self.sentence_fr}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, XdmError):
            return NotImplemented
        return (self.code, self.sentence, self.sentence_fr) == (
            other.code,
            other.sentence,
            other.sentence_fr,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.sentence))

    def __repr__(self) -> str:
        return f"XdmError({self.code}, {self.sentence!r})"


def other(sentence: str, sentence_fr: str) -> XdmError:
    """Shorthand for the catch-all code 906 (malformed package, hostile input...)."""
    return XdmError(OTHER, sentence, sentence_fr)
