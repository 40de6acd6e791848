"""Hypothesis strategies that start from a valid sample and break it the way a hostile peer would.

Random bytes alone rarely get past the first check of a parser; a valid
sample with a few edits (a flipped byte, a cut, a duplicated or dropped
slice, a token of the format dropped in, a huge value, deep nesting, an odd
encoding) reaches the code behind it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

HUGE = 64 * 1024
ODD_BYTES = (
    b"\x00",
    b"\xff",
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xef\xbb\xbf",
    b"\xc3\x28",
    b"\xe9",
    b"\xed\xa0\x80",
    b"\r",
    b"\n",
    b"\r\n",
    b"\t",
    b"\x1b",
    b"\xf4\x90\x80\x80",
)


@dataclass(frozen=True)
class Nesting:
    """How one level of nesting is written in a format: what opens it and what closes it."""

    open: bytes
    close: bytes = b""


@st.composite
def near_valid(
    draw: st.DrawFn,
    seeds: Sequence[bytes],
    tokens: Sequence[bytes] = (),
    nesting: Sequence[Nesting] = (),
    max_edits: int = 4,
) -> bytes:
    """One of ``seeds`` with up to ``max_edits`` edits; sometimes plain random bytes."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=256))
    data = bytearray(draw(st.sampled_from(list(seeds))))
    pieces = [*tokens, *ODD_BYTES]
    kinds = ["flip", "truncate", "drop", "duplicate", "token", "huge"] + (
        ["nest"] if nesting else []
    )
    for _ in range(draw(st.integers(0, max_edits))):
        kind = draw(st.sampled_from(kinds))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "drop":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            start = draw(st.integers(0, len(data)))
            data[at:at] = data[start : start + draw(st.integers(1, 256))]
        elif kind == "token":
            data[at:at] = draw(st.sampled_from(pieces))
        elif kind == "huge":  # a value of up to HUGE bytes
            piece = draw(st.sampled_from(pieces))
            data[at:at] = piece * draw(st.integers(2, max(2, HUGE // len(piece))))
        elif kind == "nest":  # deeper than any limit of the hub, not deeper than Python copes with
            level = draw(st.sampled_from(list(nesting)))
            depth = draw(st.integers(20, min(3000, HUGE // len(level.open + level.close))))
            data[at:at] = level.open * depth + level.close * depth
    return bytes(data)


def fuzz_settings(max_examples: int) -> Any:
    """A small fixed budget, the same examples every run, and a time bound per input (a hang)."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=dt.timedelta(seconds=5),
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
