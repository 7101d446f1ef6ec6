"""``sync --to dragonfly`` paths beyond the every-write matrix, on the lab's real Dragonfly: a
dropped source link continued by partial resync, a Redis Cluster into one Dragonfly, and into
Dragonfly's emulated cluster mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from tests.cluster.test_cluster_sync import _ledger, _sync_under_writer, fill
from tests.helpers import run_cli
from tests.sync.test_replica import _follow, _in_sync, _stop

pytestmark = pytest.mark.usefixtures("dragonfly_installed")


def test_dropped_link_continues_by_partial_resync(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("dragonfly")
    seed(source.endpoint, keys=2000)
    proc = _follow(source, target, tmp_path / "s", "--to", "dragonfly")
    try:
        c = source.client()
        for i in range(200):
            c.incr("counter")
            c.rpush("log", i)
        assert c.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
        for i in range(200):
            c.incr("counter")
            c.rpush("log", i)
        _in_sync(source, target)
        assert target.client().get("counter") == b"400"
        assert target.client().llen("log") == 400
        assert source.client().info("stats")["sync_partial_ok"] >= 1
    finally:
        code, _stdout, stderr = _stop(proc)
    assert code == 0, stderr
    assert "partial resync accepted" in stderr


@pytest.mark.parametrize("emulated", [False, True], ids=["one-node", "emulated-cluster"])
def test_a_redis_cluster_into_dragonfly(lab_cluster: Callable, lab: Fleet, tmp_path: Path,
                                        emulated: bool) -> None:
    """Each source primary read by its own replica-mode reader, under a live writer; into
    one Dragonfly, or one in ``--cluster_mode=emulated`` (a one-node cluster holding every
    slot, which the routed writer discovers like any cluster)."""
    source = lab_cluster("redis-7.0", shards=3)
    target = lab.start("dragonfly", extra_args=["--cluster_mode=emulated"] if emulated
                       else None)
    fill(source, 2000)
    writer = _sync_under_writer(source, target.url, tmp_path / "state", "--to", "dragonfly")
    run = _ledger(tmp_path / "state")["run"]
    assert run["mode"] == "replica" and len(run["shards"]) == 3
    result = run_cli("verify", "--source", source.url, "--target", target.url, "--full")
    assert result.code == 0, result.output[-3000:]
    assert target.client().get(writer.acks[-1]) is not None
    assert target.client().dbsize() >= 2000 + len(writer.acks) - 1
