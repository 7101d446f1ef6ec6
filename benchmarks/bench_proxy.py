"""Proxy mode figures, one run: full sync of a mixed dataset with ``sync --mode proxy``
against the servers' native REPLICAOF where native works (Redis 7.0 to Valkey 8.0), proxy
Redis 8 to Valkey 8.0 against native Redis 8 to Redis 8 on the same data, key-by-key replica
mode for the ratio (aim: proxy within 1.2x of native, at least 4x faster than replica mode),
and kvmigrate's peak RSS (aim: < 200 MB). ``KVM_BENCH_PROXY_KEYS`` sets the dataset size
(1,000,000); ``KVM_BENCH_PROXY_REPLICA=0`` leaves out the replica-mode run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess

KEYS = int(os.environ.get("KVM_BENCH_PROXY_KEYS", "1000000"))
WITH_REPLICA = os.environ.get("KVM_BENCH_PROXY_REPLICA", "1") != "0"


def _source(fleet: Fleet, spec: str) -> ServerProcess:
    """A seeded source that starts a full sync at once (no diskless-sync wait of 5 s)."""
    source = fleet.start(spec, extra_args=["--repl-diskless-sync-delay", "0"])
    seed(source.endpoint, keys=KEYS)
    return source


def _native(source: ServerProcess, target: ServerProcess) -> float:
    started = time.perf_counter()
    target.client().execute_command("REPLICAOF", "127.0.0.1", source.port)
    while True:
        t = target.client().info("replication")
        s = source.client().info("replication")
        if t.get("master_link_status") == "up" and \
                t.get("slave_repl_offset") == s.get("master_repl_offset"):
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    target.client().execute_command("REPLICAOF", "NO", "ONE")
    return seconds


def _kvmigrate(source: ServerProcess, target: ServerProcess, mode: str,
               state: Path) -> tuple[float, float, float]:
    """(process seconds, sync seconds, peak RSS MiB) of a one-shot ``kvmigrate sync --mode
    MODE``; sync seconds run from the ledger's first phase to the end of catch-up (the
    interpreter's start-up and imports left out, as native's REPLICAOF has none)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", mode, "--verify-sample", "0",
                             "--no-heartbeat", "--state", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"sync --mode {mode} failed: {stderr[-2000:]}")
    t = target.client().dbsize()
    s = source.client().dbsize()
    if t != s:
        raise RuntimeError(f"sync --mode {mode}: db0 has {t} keys on the target, {s} on the "
                           "source")
    phases = {p["name"]: p for p in json.loads((state / "ledger.json").read_text())["phases"]}
    synced = phases["catch-up"]["ended"] - phases["prepare"]["started"]
    return seconds, synced, usage.ru_maxrss / 1024


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp) / "lab") as fleet:
        print(f"dataset: {KEYS:,} mixed keys (migrate.lab.seed), one run each; sources run "
              "with repl-diskless-sync-delay 0")
        r7 = _source(fleet, "redis-7.0")
        native_s = _native(r7, fleet.start("valkey-8.0"))
        print(f"redis-7.0 -> valkey-8.0 native REPLICAOF:  {native_s:6.1f} s")
        wall, proxy_s, rss = _kvmigrate(r7, fleet.start("valkey-8.0"), "proxy",
                                        Path(tmp) / "p1")
        print(f"redis-7.0 -> valkey-8.0 --mode proxy:      {proxy_s:6.1f} s  "
              f"({proxy_s / native_s:.2f}x native; process {wall:.1f} s, "
              f"{wall / native_s:.2f}x), peak RSS {rss:.0f} MiB")
        if WITH_REPLICA:
            rwall, replica_s, rrss = _kvmigrate(r7, fleet.start("valkey-8.0"), "replica",
                                                Path(tmp) / "r1")
            print(f"redis-7.0 -> valkey-8.0 --mode replica:    {replica_s:6.1f} s  "
                  f"(proxy is {replica_s / proxy_s:.1f}x faster; process {rwall:.1f} s), "
                  f"peak RSS {rrss:.0f} MiB")
        r7.stop()

        r8 = _source(fleet, "redis-8")
        r8.client().delete("seed:hash:field-ttl")  # Valkey 8 has no field TTLs
        native8_s = _native(r8, fleet.start("redis-8"))
        print(f"redis-8 -> redis-8 native REPLICAOF:       {native8_s:6.1f} s")
        wall8, proxy8_s, rss8 = _kvmigrate(r8, fleet.start("valkey-8.0"), "proxy",
                                           Path(tmp) / "p2")
        print(f"redis-8 -> valkey-8.0 --mode proxy:        {proxy8_s:6.1f} s  "
              f"({proxy8_s / native8_s:.2f}x native redis-8 -> redis-8; process "
              f"{wall8:.1f} s, {wall8 / native8_s:.2f}x), peak RSS {rss8:.0f} MiB")
