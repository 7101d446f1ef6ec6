"""`kvmigrate sync` from a 3-primary Redis 7.0 cluster, on real lab clusters, under a writer
using a cluster client: into a cluster of the same layout, a cluster of another shape, and a
single node; `verify --full` then finds zero mismatches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from migrate.lab.cluster import ClusterHandle
from migrate.lab.fleet import Fleet
from migrate.protocol.cluster.slots import key_slot
from tests.helpers import run_cli

LabCluster = Callable[..., ClusterHandle]


def fill(handle: ClusterHandle, n: int) -> None:
    """Keys of every common type spread over every shard (hash tags keep pairs together)."""
    rc = RedisCluster(host="127.0.0.1", port=handle.nodes[0].port,
                      password=handle.password)
    pipe = rc.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"s:{i}", f"value-{i}")
        if i % 10 == 0:
            pipe.hset(f"h:{i}", mapping={"a": i, "b": "x" * (i % 50)})
            pipe.rpush(f"l:{i}", *range(i % 7 + 1))
            pipe.sadd(f"set:{i}", *[f"m{j}" for j in range(i % 5 + 1)])
            pipe.zadd(f"z:{i}", {f"p{j}": j for j in range(3)})
            pipe.set(f"ttl:{i}", i, px=3_600_000)
        if i % 100 == 0:
            pipe.xadd(f"x:{{{i}}}", {"f": i})
    pipe.execute()
    rc.close()


@dataclass
class ClusterWriter:
    """Writes w:<n> = n through a cluster client until stopped; records what it was told OK."""

    handle: ClusterHandle
    acks: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rc = RedisCluster(host="127.0.0.1", port=self.handle.nodes[0].port,
                          password=self.handle.password)
        n = 0
        while not self.stop.is_set():
            rc.set(f"w:{n}", n)
            if n % 5 == 0:
                rc.hset(f"wh:{{{n % 17}}}", f"f{n}", n)  # a few hot keys
                rc.incr(f"wc:{{{n % 13}}}")
            self.acks.append(f"w:{n}")
            n += 1
            time.sleep(0.001)
        rc.close()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def _ledger(state: Path) -> dict:
    try:
        return json.loads((state / "ledger.json").read_text())
    except (OSError, ValueError):
        return {}


def _sync_under_writer(source: ClusterHandle, target_url: str, state: Path,
                       *extra: str) -> ClusterWriter:
    writer = ClusterWriter(source)
    thread = writer.start()
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target_url, "--to", "valkey", "--follow",
                             "--state", str(state), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ,
                                                                    "NO_COLOR": "1"})
    try:
        deadline = time.monotonic() + 180
        while _ledger(state).get("status", {}).get("phase") != "follow":
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the cluster sync did not reach follow"
            time.sleep(0.2)
        time.sleep(1.0)  # writes go on while it follows
    finally:
        writer.stop.set()
        thread.join(10)
    time.sleep(2.0)  # the last writes reach the target
    proc.terminate()
    _out, err = proc.communicate(60)
    assert proc.returncode == 0, err[-3000:]
    assert writer.acks
    return writer


@pytest.mark.parametrize(("target_spec", "target_shards"), [("valkey-8.0", 3),
                                                            ("valkey-9", 2)])
def test_cluster_to_cluster(lab_cluster: LabCluster, tmp_path: Path, target_spec: str,
                            target_shards: int) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    target = lab_cluster(target_spec, shards=target_shards)
    fill(source, 3000)
    state = tmp_path / "state"
    writer = _sync_under_writer(source, target.url, state)
    ledger = _ledger(state)
    assert ledger["run"]["cluster"] and len(ledger["run"]["shards"]) == 3
    assert all((state / f"shard-{i}" / "applied.json").exists() for i in range(3))
    result = run_cli("verify", "--source", source.url, "--target", target.url, "--full",
                     "--format", "json")
    assert result.code == 0, result.output[-3000:]
    report = json.loads(result.stdout)
    assert report["ok"] and report["keys_checked"] > 3000 + len(writer.acks) - 1
    rc = RedisCluster(host="127.0.0.1", port=target.nodes[0].port)
    assert rc.get(writer.acks[-1]) is not None
    rc.close()


@pytest.mark.parametrize("mode", ["auto", "scan"])
def test_cluster_into_a_single_node(lab_cluster: LabCluster, lab: Fleet, tmp_path: Path,
                                    mode: str) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    target = lab.start("valkey-8.0")
    fill(source, 2000)
    extra = ["--mode", "scan", "--set-notify-keyspace-events"] if mode == "scan" else []
    writer = _sync_under_writer(source, target.url, tmp_path / "state", *extra)
    ledger = _ledger(tmp_path / "state")
    assert ledger["run"]["mode"] == ("scan" if mode == "scan" else "replica")
    # per shard, what its progress is out of: its primary's keys (issue 18)
    shards = ledger["status"]["shards"]
    assert len(shards) == 3 and all(r["keys_total"] > 0 for r in shards), shards
    assert ledger["status"]["keys_total"] == sum(r["keys_total"] for r in shards) >= 2000
    result = run_cli("verify", "--source", source.url, "--target", target.url, "--full")
    assert result.code == 0, result.output[-3000:]
    assert target.client().get(writer.acks[-1]) is not None


def test_scan_mode_cluster_status_has_lag_figures(lab_cluster: LabCluster, lab: Fleet,
                                                  tmp_path: Path) -> None:
    """Each shard's reader gives its figures through the engine contract: a following
    scan-mode cluster sync's status has, per shard and in total, the keys changed on the
    source and not yet copied (scan mode's lag: it has no offsets), and what it sent."""
    source = lab_cluster("redis-7.0", shards=2)
    target = lab.start("valkey-8.0")
    fill(source, 300)
    state = tmp_path / "state"
    proc = _start_follow(source, target, state, "--mode", "scan",
                         "--set-notify-keyspace-events")
    try:
        deadline = time.monotonic() + 60
        while _ledger(state).get("status", {}).get("sync_phase") != "following":
            assert time.monotonic() < deadline, "no status while following"
            time.sleep(0.2)
        status = _ledger(state)["status"]
    finally:
        proc.terminate()
        _out, err = proc.communicate(60)
    assert proc.returncode == 0, err[-3000:]
    rows = status["shards"]
    assert [r["shard"] for r in rows] == [0, 1]
    for row in rows:
        assert isinstance(row["lag_keys"], int) and row["lag_keys"] >= 0, row
        assert row["commands"] > 0 and row["target_errors"] == 0, row
        assert row["keys_loaded"] > 0, row
    assert status["lag_keys"] == sum(r["lag_keys"] for r in rows)
    assert status["keys"] == sum(r["keys_loaded"] for r in rows) >= 300


def test_scan_mode_cluster_resume_is_refused(lab_cluster: LabCluster, lab: Fleet,
                                             tmp_path: Path) -> None:
    source = lab_cluster("redis-7.0", shards=2)
    target = lab.start("valkey-8.0")
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                     "--mode", "scan", "--resume", "--state", str(tmp_path / "st"))
    assert result.code == 2 and "not supported" in result.stderr and "--flush-target" in \
        result.stderr


def test_native_and_proxy_are_refused_for_a_cluster(lab_cluster: LabCluster, lab: Fleet,
                                                    tmp_path: Path) -> None:
    source = lab_cluster("redis-7.0", shards=2)
    target = lab.start("valkey-8.0")
    for mode in ("native", "proxy"):
        result = run_cli("sync", "--source", source.url, "--target", target.url, "--to",
                         "valkey", "--mode", mode, "--state", str(tmp_path / mode))
        assert result.code == 2 and "cannot work with a cluster" in result.stderr
        assert "--mode replica" in result.stderr
    assert target.client().info("replication")["role"] == "master"
    assert target.client().dbsize() == 0


def test_a_db_other_than_0_cannot_go_to_a_cluster(lab_cluster: LabCluster, lab: Fleet,
                                                  tmp_path: Path) -> None:
    source = lab.start("redis-7.0")
    redis.Redis(port=source.port, db=1).set("k", 1)
    target = lab_cluster("valkey-8.0", shards=2)
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                     "--state", str(tmp_path / "st"))
    assert result.code != 0 and "database 0" in result.stderr, result.output[-2000:]


@dataclass
class FailoverClusterWriter:
    """Writes w:<n> through a cluster client to the old cluster; on NOREPLICAS switches to
    the new cluster, as a client with failover logic does."""

    old: ClusterHandle
    new: ClusterHandle
    acks: list[tuple[str, str, float]] = field(default_factory=list)  # key, cluster, when
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        clients = {name: RedisCluster(host="127.0.0.1", port=h.nodes[0].port,
                                      password=h.password)
                   for name, h in (("old", self.old), ("new", self.new))}
        current, n = "old", 0
        while not self.stop.is_set():
            try:
                clients[current].set(f"w:{n}", n)
                self.acks.append((f"w:{n}", current, time.time()))
                n += 1
            except redis.ResponseError as exc:
                self.errors.append(f"{current}: {exc}")
                if current == "old" and "NOREPLICAS" in str(exc):
                    current = "new"
            time.sleep(0.001)
        for client in clients.values():
            client.close()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def _start_follow(source: ClusterHandle, target: ClusterHandle, state: Path,
                  *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--to", "valkey", "--follow",
                             "--state", str(state), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    deadline = time.monotonic() + 180
    while _ledger(state).get("status", {}).get("phase") != "follow":
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the cluster sync did not reach follow"
        time.sleep(0.2)
    return proc


def test_cutover_of_a_cluster_under_a_failover_writer(lab_cluster: LabCluster,
                                                      tmp_path: Path) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    target = lab_cluster("valkey-8.0", shards=3)
    fill(source, 1500)
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)
    writer = FailoverClusterWriter(source, target)
    thread = writer.start()
    try:
        time.sleep(0.5)
        result = run_cli("cutover", "--state", str(state), "--yes", "--format", "json")
        time.sleep(0.5)
    finally:
        writer.stop.set()
        thread.join(10)
        if proc.poll() is None:
            proc.wait(30)
    assert result.code == 0, result.output[-3000:]
    record = json.loads(result.stdout)
    assert record["ok"] and 0 < record["paused_ms"] < 2000
    assert len(record["fences"]) == 3  # every source primary fenced
    old = [a for a in writer.acks if a[1] == "old"]
    new = [a for a in writer.acks if a[1] == "new"]
    assert old and new, writer.errors[:3]
    assert max(a[2] for a in old) < record["promoted_at"]
    rc = RedisCluster(host="127.0.0.1", port=target.nodes[0].port)
    values = [rc.get(key) for key, _, _ in writer.acks]
    rc.close()
    lost = [a[0] for a, v in zip(writer.acks, values, strict=True) if v is None]
    assert not lost, lost[:10]
    for i, node in enumerate(source.nodes):  # every old primary refuses writes
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            node.client().set(_key_on(source, i), 1)
    back = run_cli("rollback", "--state", str(state), "--yes")  # one primary only: refused
    assert back.code == 2 and "not automated" in back.stderr


def _key_on(handle: ClusterHandle, index: int) -> str:
    """A key whose slot node ``index`` serves (so a write there is not answered MOVED)."""
    served = handle.ranges[index]
    return next(f"probe:{i}" for i in range(100_000) if key_slot(f"probe:{i}".encode())
                in served)


def test_a_failure_before_promotion_unpauses_every_primary(lab_cluster: LabCluster,
                                                           tmp_path: Path) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    target = lab_cluster("valkey-8.0", shards=3)
    fill(source, 1000)
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)
    try:
        # a planted difference: the final verification sample fails during the pause
        rc = RedisCluster(host="127.0.0.1", port=target.nodes[0].port)
        for i in range(1000):
            rc.set(f"s:{i}", "planted")
        rc.close()
        result = run_cli("cutover", "--state", str(state), "--yes", "--verify-sample", "300")
        assert result.code != 0 and "final verification failed" in result.stderr, \
            result.output[-3000:]
        assert "unpaused" in result.stderr
        for i, node in enumerate(source.nodes):  # not paused, not fenced: writes answer
            client = node.client()
            started = time.monotonic()
            client.set(_key_on(source, i), 1)
            assert time.monotonic() - started < 0.5
        assert proc.poll() is None  # the sync still follows
    finally:
        proc.terminate()
        proc.wait(60)


def test_resume_per_shard_after_a_kill(lab_cluster: LabCluster, lab: Fleet,
                                       tmp_path: Path) -> None:
    """SIGKILL of a cluster sync, writes meanwhile, then --resume: each shard continues from
    its own applied offset (partial resync), nothing is loaded again, nothing lost."""
    source = lab_cluster("redis-7.0", shards=3)
    target = lab.start("valkey-8.0")
    fill(source, 1500)
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)  # type: ignore[arg-type]
    proc.kill()
    proc.wait()
    rc = RedisCluster(host="127.0.0.1", port=source.nodes[0].port)
    for i in range(300):
        rc.set(f"after-kill:{i}", i)
    rc.close()
    resumed = subprocess.run([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                              "--target", target.url, "--to", "valkey", "--resume",
                              "--state", str(state)], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.count("partial resync accepted") == 3, resumed.stderr[-3000:]
    result = run_cli("verify", "--source", source.url, "--target", target.url, "--full")
    assert result.code == 0, result.output[-3000:]


def test_a_shard_target_flush_deletes_only_its_slots(lab: Fleet) -> None:
    from migrate.cluster.sides import ShardTarget
    from migrate.protocol.cluster.topology import SlotRange
    from migrate.sync.sides import Target

    target = lab.start("valkey-8.0")
    client = target.client()
    keys = [f"k:{i}" for i in range(2000)]
    client.mset({k: 1 for k in keys})
    mine = (SlotRange(0, 5460),)
    ShardTarget(Target.connect(target.endpoint), mine).flushall()
    left = {k.decode() for k in client.keys("*")}
    assert left == {k for k in keys if key_slot(k.encode()) > 5460}


def test_a_slot_moved_on_the_target_during_the_sync(lab_cluster: LabCluster,
                                                    tmp_path: Path) -> None:
    """While the sync follows under a writer, a slot holding keys the writer keeps changing
    moves between target primaries (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE): the
    sync follows the redirections; verify --full then finds nothing missing or different."""
    from tests.cluster.test_router import _move_slot, _owner

    source = lab_cluster("redis-7.0", shards=3)
    target = lab_cluster("valkey-8.0", shards=3)
    fill(source, 1500)
    hot = RedisCluster(host="127.0.0.1", port=source.nodes[0].port)
    for i in range(200):
        hot.set(f"{{mv}}:{i}", "start")
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)
    stop = threading.Event()

    def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            hot.set(f"{{mv}}:{n % 200}", n)
            hot.hincrby("{mv}:counter", "n", 1)
            n += 1
            time.sleep(0.001)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        slot = key_slot(b"{mv}")
        src = _owner(target, slot)
        _move_slot(target, slot, src, (src + 1) % 3)
        time.sleep(1.0)
    finally:
        stop.set()
        writer.join(10)
        hot.close()
    time.sleep(2.0)
    assert proc.poll() is None, proc.communicate()[1][-3000:]  # never aborted on a redirect
    proc.terminate()
    _out, err = proc.communicate(60)
    assert proc.returncode == 0, err[-3000:]
    result = run_cli("verify", "--source", source.url, "--target", target.url, "--full")
    assert result.code == 0, result.output[-3000:]


def test_source_cluster_flag_on_a_standalone_server_is_refused(lab: Fleet,
                                                               tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                     "--source-cluster", "--state", str(tmp_path / "st"))
    assert result.code == 2 and "not in cluster mode" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_scan_mode_cluster_sync_then_cutover(lab_cluster: LabCluster, tmp_path: Path) -> None:
    """A cluster whose primaries are read with SCAN + keyspace notifications (as for a
    source that refuses PSYNC), into a 2-shard valkey-9 cluster, under a cluster client that
    fails over on NOREPLICAS: the sync follows, the cut-over's barrier reaches every shard,
    every acknowledged write is on the new cluster."""
    source = lab_cluster("redis-7.0", shards=3)
    target = lab_cluster("valkey-9", shards=2)
    fill(source, 1500)
    state = tmp_path / "state"
    proc = _start_follow(source, target, state, "--mode", "scan",
                         "--set-notify-keyspace-events")
    writer = FailoverClusterWriter(source, target)
    thread = writer.start()
    try:
        assert _ledger(state)["run"]["mode"] == "scan"
        time.sleep(0.5)
        result = run_cli("cutover", "--state", str(state), "--yes", "--format", "json")
        time.sleep(0.5)
    finally:
        writer.stop.set()
        thread.join(10)
        if proc.poll() is None:
            proc.wait(30)
    assert result.code == 0, result.output[-3000:]
    record = json.loads(result.stdout)
    assert record["ok"] and len(record["fences"]) == 3
    old = [a for a in writer.acks if a[1] == "old"]
    assert old and [a for a in writer.acks if a[1] == "new"], writer.errors[:3]
    assert max(a[2] for a in old) < record["promoted_at"]
    rc = RedisCluster(host="127.0.0.1", port=target.nodes[0].port)
    lost = [key for key, _, _ in writer.acks if rc.get(key) is None]
    assert not lost, lost[:10]
    assert rc.get("s:7") == b"value-7" and rc.hget("h:10", "a") == b"10"
    rc.close()
    assert proc.returncode == 0, proc.stderr.read()[-2000:] if proc.stderr else ""
