"""Wall-clock time spent in each stage of the message path, for the benchmark's breakdown.

A ``StageClock`` lives in the process's services (``mss.services.Services.stage_clock``);
each stage adds its elapsed time under its name. Two ``perf_counter`` calls
per stage: cheap enough to stay on in production.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class StageTotal:
    """How many times a stage ran and the seconds it took in all."""

    count: int = 0
    seconds: float = 0.0

    @property
    def mean_ms(self) -> float:
        return 1000.0 * self.seconds / self.count if self.count else 0.0


class StageClock:
    """Accumulated time per stage name (parse, verify, deliver.wait, deliver.batch...)."""

    def __init__(self) -> None:
        self.totals: dict[str, StageTotal] = {}

    def add(self, name: str, seconds: float, count: int = 1) -> None:
        total = self.totals.setdefault(name, StageTotal())
        total.count += count
        total.seconds += seconds

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block under ``name`` (also when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def reset(self) -> None:
        self.totals.clear()

    def report(self) -> str:
        """One line per stage: calls, mean milliseconds, total seconds."""
        lines = [f"    {'stage':<22}{'calls':>8}{'mean ms':>10}{'total s':>10}"]
        for name, total in sorted(self.totals.items()):
            lines.append(
                f"    {name:<22}{total.count:>8}{total.mean_ms:>10.2f}{total.seconds:>10.2f}"
            )
        return "\n".join(lines)
