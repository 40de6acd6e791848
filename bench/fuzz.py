"""The long fuzz run: atheris (libFuzzer) on every parser target of tests/fuzz/targets.py.

    python bench/fuzz.py --target xdm --seconds 600
    python bench/fuzz.py --all --seconds 3600        # the hour split between the targets
    make fuzz                                         # the same, FUZZ_SECONDS=3600 by default

Same targets and same property as the Hypothesis tests (tests/fuzz/): the parser returns or
raises the project's own error with a sentence; libFuzzer's -timeout bounds each input. Each
target runs in its own process, started from the valid samples; an input that breaks the
property is written to tests/fuzz/regressions/<target>/ (crash-*, timeout-*), which
tests/fuzz/test_regressions.py replays in every `make test`. After a crash the target is
started again until its time is spent.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.targets import REGRESSIONS, TARGETS, check, seeds

MAX_LEN = 256 * 1024
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


def _child(name: str, libfuzzer_args: list[str]) -> None:
    """Inside the fuzzing process: instrument the parsers, then hand over to libFuzzer."""
    import atheris

    with atheris.instrument_imports(include=["mss", "dmp_bridge"]):
        for sample in seeds(name):  # imports the target's modules inside the block
            check(name, sample, seconds=0)

    def one_input(data: bytes) -> None:
        check(name, data, seconds=0)  # libFuzzer's -timeout is the time bound (it owns SIGALRM)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def run_target(name: str, seconds: int, regressions: Path, timeout: int) -> tuple[int, list[Path]]:
    """Fuzz one target for ``seconds``; the inputs executed and the new crashing inputs."""
    out = regressions / name
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    executed = 0
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as corpus:
        for number, sample in enumerate(seeds(name)):
            Path(corpus, f"seed-{number}").write_bytes(sample)
        for _ in range(50):  # restarted after each crash, until the time is spent
            left = int(deadline - time.monotonic())
            if left < 1:
                break
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    name,
                    "--",
                    f"-max_total_time={left}",
                    f"-timeout={timeout}",
                    f"-max_len={MAX_LEN}",
                    f"-artifact_prefix={out}/",
                    "-print_final_stats=1",
                    "-rss_limit_mb=4096",
                    corpus,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            executed += sum(int(n) for n in _EXECUTED.findall(done.stderr))
            if done.returncode == 0:
                break
    found = sorted(set(out.iterdir()) - before)
    if not any(out.iterdir()):
        out.rmdir()
    return executed, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", action="append", choices=sorted(TARGETS), help="a target (repeatable)"
    )
    parser.add_argument(
        "--all", action="store_true", help="every target, the time split between them"
    )
    parser.add_argument(
        "--seconds", type=int, default=60, help="time for one target, or for all with --all"
    )
    parser.add_argument(
        "--timeout", type=int, default=10, help="seconds one input may take (a hang past it)"
    )
    parser.add_argument(
        "--regressions",
        type=Path,
        default=REGRESSIONS,
        help="where crashing inputs are kept (default tests/fuzz/regressions)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        _child(args.child, [a for a in rest if a != "--"])
        return 0
    names = sorted(TARGETS) if args.all or not args.target else args.target
    share = max(1, args.seconds // len(names)) if args.all else args.seconds
    regressions = args.regressions.resolve()
    total_inputs = total_crashes = 0
    for name in names:
        executed, found = run_target(name, share, regressions, args.timeout)
        total_inputs += executed
        total_crashes += len(found)
        print(
            f"{name:16} {executed:10d} inputs in {share} s, {len(found)} crashing input(s)"
            + "".join(f"\n{'':16} kept {path.relative_to(regressions.parent)}" for path in found),
            flush=True,
        )
    print(
        f"total: {total_inputs} inputs, {total_crashes} crashing input(s) kept under {regressions}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
