"""``sync --follow --metrics-listen`` from a real 3-primary cluster: per-shard figures with a
``shard`` label, scraped while it follows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from migrate.lab.cluster import ClusterHandle
from migrate.lab.fleet import Fleet
from migrate.lab.server import free_port
from tests.cluster.test_cluster_sync import fill
from tests.helpers import run_cli
from tests.sync.prometheus_text import Scrape, scrape

LabCluster = Callable[..., ClusterHandle]


def test_a_cluster_sync_is_scraped_per_shard(lab_cluster: LabCluster, lab: Fleet,
                                             tmp_path: Path) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    target = lab.start("valkey-8.0")
    fill(source, 300)
    per_primary = sorted(float(n.client().dbsize()) for n in source.nodes)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--to", "valkey", "--follow",
                             "--state", str(tmp_path / "state"),
                             "--metrics-listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    seen: Scrape | None = None
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, f"never all keys per shard: {seen}"
            try:
                _kind, seen = scrape(url)
            except OSError:
                seen = None
            if seen is not None and sorted(seen.values("kvmigrate_keys")) == per_primary \
                    and seen.values("kvmigrate_phase", phase="follow") == [1.0]:
                break
            time.sleep(0.3)
        # every keys sample is a shard's (no unlabelled total beside them)
        shards = {lab_.get("shard") for n, lab_, _v in seen.samples if n == "kvmigrate_keys"}
        assert shards == {"0", "1", "2"}
        for shard in shards:
            assert seen.value("kvmigrate_lag_bytes", shard=shard) is not None
            assert seen.value("kvmigrate_commands_applied_total", shard=shard) is not None
            assert seen.value("kvmigrate_target_refused_total", shard=shard) == 0
            assert seen.values("kvmigrate_shard_phase", shard=shard, phase="following") == [1.0]
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    # the report of the same run has a line per shard
    report = run_cli("report", "--state", str(tmp_path / "state"), "--format", "json")
    assert report.code == 0, report.output
    data = json.loads(report.stdout)
    assert sorted(float(r["keys_loaded"]) for r in data["shards"]) == per_primary
    assert data["run"]["cluster"] and data["outcome"] == "done"
    text = run_cli("report", "--state", str(tmp_path / "state")).stdout
    assert "\n## Shards\n" in text and "Cluster source: 3 shard(s)" in text
