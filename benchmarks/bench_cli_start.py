"""CLI start-up: wall time of ``kvmigrate --version`` and ``kvmigrate --help`` as a user runs
them (a fresh process each time; median of 7), beside a bare ``python -c pass`` in the same
run. The goal (issue 17): under 0.3 s for both."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

ROUNDS = 7
GOAL_S = 0.3


def _median(argv: list[str]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run() -> None:
    python = _median([sys.executable, "-c", "pass"])
    print(f"python -c pass (the floor): {python:.3f} s")
    for args in (["--version"], ["--help"], ["sync", "--help"]):
        took = _median([sys.executable, "-m", "migrate", *args])
        mark = "meets" if took < GOAL_S else "misses"
        print(f"kvmigrate {' '.join(args)}: {took:.3f} s ({took / python:.1f}x python start-up; "
              f"{mark} the {GOAL_S} s goal)")
