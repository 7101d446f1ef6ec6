"""Cluster sync figures, one run: the same dataset held by a 3-shard Redis 7.0 cluster and by
a single Redis 7.0 node, each synced in full into a single Valkey 8.0 node with
``kvmigrate sync`` (replica mode: one reader per source primary for the cluster). Prints the
wall time of each full sync (until the run follows the source), the ratio, and kvmigrate's
peak RSS for each. ``KVM_BENCH_CLUSTER_KEYS`` changes the dataset size (1,000,000)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from migrate.lab.cluster import start_cluster
from migrate.lab.fleet import Fleet

KEYS = int(os.environ.get("KVM_BENCH_CLUSTER_KEYS", "1000000"))
BATCH = 5000


def _fill(client: redis.Redis | RedisCluster) -> None:
    """Strings, and a hash, a list and a set every 20 keys: the same keys on both sides."""
    for start in range(0, KEYS, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + BATCH, KEYS)):
            if i % 20 == 0:
                pipe.hset(f"h:{i}", mapping={"a": i, "b": "x" * 40, "c": "y"})
            elif i % 20 == 1:
                pipe.rpush(f"l:{i}", *range(8))
            elif i % 20 == 2:
                pipe.sadd(f"set:{i}", *[f"m{j}" for j in range(6)])
            else:
                pipe.set(f"s:{i}", f"value-{i}-" + "v" * 40)
        pipe.execute()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _sync(source_url: str, target_url: str, state: Path) -> tuple[float, float]:
    """Seconds until the sync follows the source, and its peak RSS in MiB."""
    status = state.with_suffix(".json")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source_url,
                             "--target", target_url, "--to", "valkey", "--mode", "replica",
                             "--follow",
                             "--verify-sample", "0", "--state", str(state),
                             "--status-json", str(status)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"kvmigrate sync exited {proc.returncode}")
        try:
            phase = json.loads(status.read_text())["status"].get("phase")
        except (OSError, ValueError, KeyError):
            phase = None
        if phase == "follow":
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    peak = _peak_rss_mib(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.wait(120)
    return seconds, peak


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp) / "lab") as fleet:
        cluster = start_cluster(fleet, "redis-7.0", 3)
        single = fleet.start("redis-7.0")
        started = time.perf_counter()
        rc = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
        _fill(rc)
        rc.close()
        _fill(single.client())
        print(f"dataset: {KEYS:,} keys on a 3-shard cluster and on a single node (filled in "
              f"{time.perf_counter() - started:.0f} s)")
        per_shard = [n.client().dbsize() for n in cluster.nodes]
        print(f"keys per shard: {', '.join(f'{k:,}' for k in per_shard)}")

        target = fleet.start("valkey-8.0")
        single_s, single_rss = _sync(single.url, target.url, Path(tmp) / "single")
        target.stop()
        target = fleet.start("valkey-8.0")
        cluster_s, cluster_rss = _sync(cluster.url, target.url, Path(tmp) / "cluster")
        keys = target.client().dbsize()
        print(f"single node -> valkey-8.0 (replica mode):      {single_s:6.1f} s, "
              f"peak RSS {single_rss:.0f} MiB")
        print(f"3-shard cluster -> valkey-8.0 (3 readers):     {cluster_s:6.1f} s, "
              f"peak RSS {cluster_rss:.0f} MiB ({keys:,} keys on the target)")
        print(f"cluster / single: {cluster_s / single_s:.2f}x time, "
              f"{cluster_rss / single_rss:.2f}x RSS (on {os.cpu_count()} cores)")
