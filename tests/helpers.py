"""Small helpers shared by tests: run the real CLI in a subprocess; wait on a condition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Until ``condition()`` holds; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
            input_text: str | None = None, cwd: str | os.PathLike[str] | None = None) -> Result:
    """Run ``kvmigrate ARGS`` as a user would (a new process, real exit code)."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, input=input_text, cwd=cwd)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_cli_many(commands: list[list[str]], timeout: float = 300) \
        -> list[tuple[Result, float]]:
    """Run each ``kvmigrate ARGS`` of ``commands`` at the same time (separate processes),
    and give back each one's result with its own wall seconds, in order: for tests whose
    commands each wait out a deadline on a server that never answers."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    def one(args: list[str]) -> tuple[Result, float]:
        started = time.monotonic()
        result = run_cli(*args, timeout=timeout)
        return result, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=len(commands) or 1) as pool:
        return list(pool.map(one, commands))
