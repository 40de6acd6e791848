"""JSON from the network, with its nesting bounded before it is parsed.

``json.loads`` recurses once per ``[`` or ``{``: 100,000 of them raise
RecursionError (a 500 with a traceback). ``loads_bounded`` counts the
depth first, iteratively, skipping strings whole (a regular expression
runs over a long base64 string in C), and refuses a body nested deeper
than ``MAX_JSON_DEPTH``. FHIR resources nest about ten deep.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 64
# A JSON string (escapes included) or one bracket; everything else is skipped.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPENING, _CLOSING = frozenset("[{"), frozenset("]}")


class JsonRefused(ValueError):
    """The body is not JSON, or nests deeper than the limit; ``sentence`` says which."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


def json_depth(text: str, stop_above: int = MAX_JSON_DEPTH) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (counting stops past
    ``stop_above``)."""
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        bracket = token.group()
        if bracket in _OPENING:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    break
        elif bracket in _CLOSING:
            depth -= 1
    return deepest


def loads_bounded(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON nested at most ``max_depth`` deep, or raise JsonRefused with a sentence."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JsonRefused("the body is not UTF-8 JSON") from None
    if json_depth(text, max_depth) > max_depth:
        raise JsonRefused(
            f"the JSON body nests deeper than {max_depth} levels of arrays and "
            "objects; no FHIR resource needs as many"
        )
    try:
        return json.loads(text)
    except (
        ValueError,
        RecursionError,
    ):  # ValueError: JSONDecodeError, or an integer of 4301+ digits
        raise JsonRefused("the body is not JSON") from None
