"""Every input that ever broke a parser in a long fuzz run (bench/fuzz.py), replayed.

bench/fuzz.py writes them to tests/fuzz/regressions/<target>/; the Hypothesis tests keep
theirs as @example lines.
"""

from __future__ import annotations

import pytest

from tests.fuzz.targets import REGRESSIONS, check

CASES = sorted(
    path for path in REGRESSIONS.glob("*/*") if path.is_file() and not path.name.startswith(".")
)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_kept_crash_input_is_now_read_or_refused(path) -> None:  # type: ignore[no-untyped-def]
    check(path.parent.name, path.read_bytes())
