"""Redis 7.0 -> Dragonfly initial sync, one run, side by side: Dragonfly's own REPLICAOF of
the source against ``kvmigrate sync --to dragonfly`` (auto: replica mode), the same dataset
(``KVM_BENCH_DRAGONFLY_KEYS``, default 1,000,000 ``lab seed`` keys of the 'strings' profile,
which Dragonfly takes whole). Needs a Dragonfly in the lab (``kvmigrate lab install
dragonfly``); without one it says so and measures nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_sync import _peak_rss_mib, _status, _wait
from migrate.lab import install
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed

KEYS = int(os.environ.get("KVM_BENCH_DRAGONFLY_KEYS", "1000000"))


def run() -> None:
    if install.installed("dragonfly") is None:
        print("no Dragonfly in the lab: run `kvmigrate lab install dragonfly [--from FILE]`")
        return
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp) / "lab") as fleet:
        source = fleet.start("redis-7.0")
        seed(source.endpoint, keys=KEYS, profile="strings")
        used = source.client().info("memory")["used_memory"]
        print(f"dataset: {KEYS:,} keys, source memory {used / 2**20:.0f} MiB")

        native = fleet.start("dragonfly", extra_args=["--maxmemory=4gb"])
        started = time.perf_counter()
        native.client().execute_command("REPLICAOF", "127.0.0.1", source.port)
        _wait(lambda: native.client().info("replication").get("master_link_status") == "up"
              and native.client().dbsize() >= source.client().dbsize())
        native_s = time.perf_counter() - started
        native.client().execute_command("REPLICAOF", "NO", "ONE")
        native.stop()
        print(f"Dragonfly's own REPLICAOF, full sync: {native_s:.1f} s")

        target = fleet.start("dragonfly", extra_args=["--maxmemory=4gb"])
        status = Path(tmp) / "status.json"
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source",
                                 source.url, "--target", target.url, "--to", "dragonfly",
                                 "--follow", "--verify-sample", "0", "--state",
                                 str(Path(tmp) / "state"), "--status-json", str(status)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _status(status).get("phase") == "follow" or proc.poll() is not None)
        chosen_s = time.perf_counter() - started
        mode = _status(status).get("mode")
        peak = _peak_rss_mib(proc.pid) if proc.poll() is None else float("nan")
        proc.terminate()
        proc.wait(120)
        print(f"kvmigrate sync --to dragonfly (mode {mode}), full sync: {chosen_s:.1f} s; "
              f"ratio to Dragonfly's REPLICAOF {chosen_s / native_s:.2f}x; "
              f"peak RSS {peak:.0f} MiB; target keys {target.client().dbsize():,}")
