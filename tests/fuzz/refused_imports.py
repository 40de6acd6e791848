"""A few near-valid import files that the importer refuses, picked the same way every run."""

from __future__ import annotations

import random

from mss.errors import InvalidInput
from tests.fuzz.targets import TARGETS, seeds


def refused_inputs(name: str, count: int, *, seed: int = 0) -> list[bytes]:
    """``count`` edits of target ``name``'s samples that its parser refuses (InvalidInput)."""
    target, rng, found = TARGETS[name], random.Random(seed), []
    pieces = [*target.tokens, b"\xff", b"\x00"]
    for _ in range(2000):
        data = bytearray(rng.choice(seeds(name)))
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(data))
            edit = rng.randrange(4)
            if edit == 0:
                del data[at:]
            elif edit == 1:
                data[at:at] = rng.choice(pieces)
            elif edit == 2:
                start = rng.randint(0, len(data))
                data[at:at] = data[start : start + rng.randint(1, 200)]
            elif target.nesting:
                level = rng.choice(target.nesting)
                data[at:at] = level.open * 300 + level.close * 300
        try:
            target.parse(bytes(data))
        except InvalidInput:
            found.append(bytes(data))
            if len(found) == count:
                break
    return found
