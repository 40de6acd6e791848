"""French the portal writes the same way on every page: « de » before a name, and times.

The templates use these as Jinja filters (``{{ name|de }}``, ``{{ when|moment }}``,
``{{ when|hour }}``, ``{{ when|day }}``), the Python views call them directly: one rule each.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from mss.policy.lifecycle import FRENCH_MONTHS
from portal.clock import PARIS

# Names whose h is aspirated: « de Hassan », not « d'Hassan ». Any other h is mute (« d'Hugo »).
ASPIRATED_H = frozenset({"hakim", "halima", "hamid", "hanane", "hassan", "hocine", "houria"})
VOWELS = frozenset("aeiou")


def _base_letters(word: str) -> str:
    """``word`` in lower case without accents (É -> e, Œ -> oe)."""
    folded = word.casefold().replace("œ", "oe").replace("æ", "ae")
    return "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c))


def elides(name: str) -> bool:
    """Whether « de » becomes « d' » before ``name``: a vowel sound first (mute h, y before a
    consonant as in Yves; a y before a vowel is a consonant: « de Yasmine »)."""
    letters = _base_letters(name.strip())
    if not letters:
        return False
    first = letters[0]
    if first in VOWELS:
        return True
    if first == "y":
        return len(letters) > 1 and letters[1] not in VOWELS | {"y"}
    if first == "h":
        return letters.split()[0].rstrip("-'") not in ASPIRATED_H and len(letters) > 1
    return False


def de(name: str) -> str:
    """The preposition with its name: « d'Émilie », « d'Hugo », « de Léa »."""
    name = name.strip()
    return f"d'{name}" if elides(name) else f"de {name}"


def day(when: dt.datetime | dt.date) -> str:
    """``12/03/2026`` (a datetime in Paris time)."""
    if isinstance(when, dt.datetime):
        when = when.astimezone(PARIS)
    return when.strftime("%d/%m/%Y")


MONTHS = FRENCH_MONTHS  # one table of month names (mss.policy.lifecycle writes dates too)


def month(when: dt.datetime | dt.date) -> str:
    """``novembre 2026`` (a datetime in Paris time)."""
    if isinstance(when, dt.datetime):
        when = when.astimezone(PARIS)
    return f"{MONTHS[when.month - 1]} {when.year}"


def hour(when: dt.datetime) -> str:
    """``15 h 27``, ``09 h 05``: Paris time, as ``portal.messages.local_time`` writes it."""
    return when.astimezone(PARIS).strftime("%H h %M")


def moment(when: dt.datetime) -> str:
    """``12/03/2026 à 15 h 27``, Paris time: the one way the portal writes a date and time."""
    return f"{day(when)} à {hour(when)}"


FILTERS = {"de": de, "day": day, "hour": hour, "moment": moment}
