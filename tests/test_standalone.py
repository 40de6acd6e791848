"""The repository stands alone: a clone with nothing beside it has every file its tests read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [
        ROOT / name
        for name in listed.stdout.splitlines()
        if name.endswith((".py", ".md", ".toml", ".example", ".cfg", ".ini", ".sh", ".yml"))
        or name in ("Makefile", ".ci/run")
    ]


def test_no_tracked_file_points_outside_the_repository() -> None:
    outside = ["../" + "shared", "MSS_" + "ANS_DATA"]
    offenders = [
        str(path.relative_to(ROOT))
        for path in _tracked_text_files()
        if path.is_file()
        and any(marker in path.read_text(encoding="utf-8", errors="replace") for marker in outside)
    ]
    assert offenders == []


def test_a_bare_clone_runs_the_sample_tests(tmp_path: Path) -> None:
    """Clone what is committed into an empty folder and run the tests that read the sample
    documents."""
    clone = tmp_path / "alone" / "mss-hub"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSS_")}
    env.update(MSS_TEST_ENGINES="sqlite", PYTHONPATH=str(clone))
    env.pop("CI", None)  # CI's both-engines rule is for the whole suite, not this sample of it
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_dmp_samples.py",
            "tests/test_import_whitelist.py",
            "tests/test_plain_headers.py",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "error" not in done.stdout.splitlines()[-1]
