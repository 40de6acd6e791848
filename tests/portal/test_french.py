"""The portal's French: « de » or « d' » before a name, and the one way it writes a time."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.french import de, hour, moment


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("Emma Petit", "d'Emma Petit"),
        ("Émilie Martin", "d'Émilie Martin"),
        ("Hugo Leroy", "d'Hugo Leroy"),  # mute h
        ("Hélène Roux", "d'Hélène Roux"),
        ("Yves Morel", "d'Yves Morel"),  # y before a consonant sounds like i
        ("Olivier Blanc", "d'Olivier Blanc"),
        ("Œnone Dupré", "d'Œnone Dupré"),
        ("ïsa Vidal", "d'ïsa Vidal"),
        ("Léo Leroy", "de Léo Leroy"),
        ("Yasmine Haddad", "de Yasmine Haddad"),  # y before a vowel is a consonant
        ("Hassan Benali", "de Hassan Benali"),  # aspirated h
        ("Zoé Bernard", "de Zoé Bernard"),
        ("  Anna ", "d'Anna"),
    ],
)
def test_de_elides_before_a_vowel_sound(name: str, written: str) -> None:
    assert de(name) == written


def test_one_time_format_in_paris_time() -> None:
    summer = dt.datetime(2026, 7, 14, 13, 27, tzinfo=dt.UTC)  # 15 h 27 in Paris (UTC+2)
    winter = dt.datetime(2026, 1, 5, 8, 5, tzinfo=dt.UTC)  # 09 h 05 (UTC+1)
    assert moment(summer) == "14/07/2026 à 15 h 27"
    assert hour(winter) == "09 h 05"
    assert moment(winter) == "05/01/2026 à 09 h 05"
