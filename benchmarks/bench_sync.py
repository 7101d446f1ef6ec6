"""Live sync figures, one run: full sync of a mixed dataset (Redis 7.0 to Valkey 8.0) with
kvmigrate's replica mode against the servers' native REPLICAOF (aim: within 1.5x), the
replay throughput under a redis-benchmark write load, kvmigrate's peak RSS (aim: < 300 MB)
and ``verify --full`` keys/s. ``KVM_BENCH_SYNC_KEYS`` changes the dataset size (1,000,000)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from migrate.lab import install
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.verify.runner import VerifyOptions, verify

KEYS = int(os.environ.get("KVM_BENCH_SYNC_KEYS", "1000000"))
BENCH_REQUESTS = 200_000


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())["status"]
    except (OSError, ValueError, KeyError):
        return {}


def _wait(predicate: Callable[[], bool], timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.1)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _redis_benchmark(port: int) -> list[str]:
    rec = install.installed("redis-7.0")
    assert rec is not None and rec.loader is not None
    binary = str(Path(rec.binary).with_name("redis-benchmark"))
    return [rec.loader, "--library-path", rec.library_path or "", binary, "-p", str(port),
            "-t", "set,lpush,incr", "-n", str(BENCH_REQUESTS), "-r", "100000", "-P", "16",
            "-q"]


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp) / "lab") as fleet:
        source = fleet.start("redis-7.0")
        seed(source.endpoint, keys=KEYS)
        used = source.client().info("memory")["used_memory"]
        print(f"dataset: {KEYS:,} mixed keys, source memory {used / 2**20:.0f} MiB")

        native = fleet.start("valkey-8.0")
        started = time.perf_counter()
        native.client().execute_command("REPLICAOF", "127.0.0.1", source.port)

        def native_done() -> bool:
            t = native.client().info("replication")
            s = source.client().info("replication")
            return t.get("master_link_status") == "up" and \
                t.get("slave_repl_offset") == s.get("master_repl_offset")
        _wait(native_done)
        native_s = time.perf_counter() - started
        native.client().execute_command("REPLICAOF", "NO", "ONE")
        print(f"native REPLICAOF full sync: {native_s:.1f} s")

        started = time.perf_counter()
        report = verify(source.endpoint, native.endpoint, VerifyOptions(full=True))
        verify_s = time.perf_counter() - started
        print(f"verify --full: {report.keys_checked:,} keys in {verify_s:.1f} s, "
              f"{report.keys_checked / verify_s:,.0f} keys/s, ok={report.ok}")
        native.stop()

        target = fleet.start("valkey-8.0")
        status = Path(tmp) / "status.json"
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source",
                                 source.url, "--target", target.url, "--mode", "replica",
                                 "--follow", "--verify-sample", "0", "--state",
                                 str(Path(tmp) / "state"), "--status-json", str(status)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _status(status).get("phase") == "follow")
        replica_s = time.perf_counter() - started
        print(f"replica mode full sync: {replica_s:.1f} s; ratio to native "
              f"{replica_s / native_s:.2f}x (aim <= 1.5x)")

        before = _status(status).get("commands", 0)
        started = time.perf_counter()
        subprocess.run(_redis_benchmark(source.port), check=True, capture_output=True)
        load_s = time.perf_counter() - started
        offset = int(source.client().info("replication")["master_repl_offset"])
        _wait(lambda: _status(status).get("applied_offset", 0) >= offset, timeout=600)
        replay_s = time.perf_counter() - started
        commands = _status(status).get("commands", 0) - before
        print(f"replay under redis-benchmark ({3 * BENCH_REQUESTS:,} writes, pipelined 16, "
              f"{load_s:.1f} s on the source): caught up after {replay_s:.1f} s, "
              f"{commands / replay_s:,.0f} commands/s replayed")
        peak = _peak_rss_mib(proc.pid)
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
        print(f"kvmigrate sync peak RSS: {peak:.0f} MiB (aim < 300 MiB)")
