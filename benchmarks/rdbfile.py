"""Shared by the RDB benchmarks: a 1,000,000-key mixed RDB written by Valkey 8.0 (RDB 11,
so Valkey can also load it natively), cached between runs, and a way to time a child
process with its peak RSS."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.paths import lab_dir
from migrate.lab.seed import seed

KEYS = 1_000_000
WRITER = "valkey-8.0"


def mixed_rdb(keys: int = KEYS) -> Path:
    cache = lab_dir() / "bench" / f"mixed-{keys}-{WRITER}.rdb"
    if cache.exists():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with Fleet(cache.parent / "work") as fleet:
        server = fleet.start(WRITER)
        seed(server.endpoint, keys=keys)
        server.client(0).save()
        shutil.copy(Path(server.directory) / "dump.rdb", cache)
    shutil.rmtree(cache.parent / "work", ignore_errors=True)
    return cache


def hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def timed(argv: list[str]) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS MiB, stdout, CPU seconds) of one child process. The peak is
    the child's VmHWM polled from /proc (rusage would count the parent's pages the child
    had before exec); CPU time (user + system) is the child's own, from wait4, so it does
    not depend on what else runs on the machine."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        peak = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, hwm_mib(proc.pid) or 0.0)
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}")
        out.seek(0)
        return elapsed, peak, out.read().decode(errors="replace"), \
            usage.ru_utime + usage.ru_stime


def sync_argv(kvmigrate: list[str], source_url: str, target_url: str, mode: str,
              state: Path, *extra: str) -> list[str]:
    """``kvmigrate sync`` as the benchmarks run it: to caught up, no sample, no heartbeat."""
    return [*kvmigrate, "sync", "--source", source_url, "--target", target_url, "--mode", mode,
            "--verify-sample", "0", "--no-heartbeat", "--state", str(state), *extra]


def copy_rdb_argv(kvmigrate: list[str], rdb: Path, target_url: str) -> list[str]:
    return [*kvmigrate, "copy", "--from-rdb", str(rdb), "--target", target_url,
            "--format", "json"]
