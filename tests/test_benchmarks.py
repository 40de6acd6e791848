"""Every benchmark still runs: each script with the smallest parameters, checked for its figures.

Benchmarks are not timed here (tests never assert on time); this only keeps
them working as the code they measure changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

RUNS = {
    "smtp_throughput": (["--messages", "12", "--sessions", "2", "--engines", "sqlite"], "ratio"),
    "smtp_vs_postfix": (["--messages", "6", "--sessions", "2", "--rounds", "1"], "ratio"),
    "imap_load": (
        [
            "--clients",
            "2",
            "--seconds",
            "2",
            "--messages",
            "20",
            "--big-folder",
            "200",
            "--idle-connections",
            "20",
        ],
        "ratio",
    ),
    "imap_vs_dovecot": (
        [
            "--clients",
            "2",
            "--users",
            "3",
            "--seconds",
            "2",
            "--messages",
            "20",
            "--big-folder",
            "200",
            "--rounds",
            "1",
        ],
        "ratio",
    ),
    "dmp_filing": (["--messages", "6"], "ratio"),
    "convocations": (["-n", "8", "--engine", "sqlite"], "ratio"),
    "login_cost": (["--logins", "3", "--rounds", "1"], "beyond the noop"),
    "portal_load": (["--sessions", "2", "--seconds", "2", "--messages-per-patient", "2"], "ratio"),
    "fuzz": (["--all", "--seconds", "17", "--regressions", "found"], "inputs"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_benchmark_runs_and_prints_its_ratio(name: str, tmp_path: Path) -> None:
    if name == "imap_vs_dovecot" and not Path("/usr/lib/dovecot/imap").exists():
        pytest.skip("needs Debian's dovecot-imapd (.ci/run installs it)")
    args, expected = RUNS[name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSS_")}
    done = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert expected in done.stdout.lower(), done.stdout[-3000:]
    assert "Traceback" not in done.stderr
