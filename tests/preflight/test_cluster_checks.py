"""Preflight of cluster sources and targets, on real lab clusters and servers: facts read from
every primary, and the cluster.* checks' findings with their severities."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from migrate.inspect.gather import gather_source
from migrate.lab.cluster import ClusterHandle, node_state, start_lone_node
from migrate.lab.fleet import Fleet
from migrate.protocol.cluster.slots import key_slot
from tests.helpers import run_cli

LabCluster = Callable[..., ClusterHandle]
PASSWORD = "cl-Secr3t-pw"
KEYS = 600


def preflight(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("preflight", *args, "--format", "json")
    assert result.stdout, result.stderr
    return result.code, json.loads(result.stdout)


def findings(doc: dict[str, Any], check_id: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"] == check_id]


def severities(doc: dict[str, Any], check_id: str) -> list[str]:
    return sorted(f["severity"] for f in findings(doc, check_id))


def seed_cluster(handle: ClusterHandle, count: int = KEYS) -> None:
    """Keys written through a cluster client: they land on every shard."""
    client = redis.RedisCluster(host="127.0.0.1", port=handle.nodes[0].port,
                                password=handle.password)
    try:
        for i in range(count):
            client.set(f"user:{i}", "x" * 200)
    finally:
        client.close()


def test_cluster_source_facts_are_summed_over_every_primary(lab_cluster: LabCluster) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    seed_cluster(source)
    per_node = [n.client().dbsize() for n in source.nodes]
    assert all(per_node) and sum(per_node) == KEYS  # every shard holds some of them

    facts = gather_source(source.nodes[1].endpoint, sample=90)  # through any node
    assert facts.total_keys == KEYS
    assert facts.sample.sampled == 90 and facts.sample.limit == 90  # the same total
    assert not facts.sample.complete
    shards = facts.cluster.shards
    assert [s.keys for s in shards] == per_node
    assert [s.primary for s in shards] == [f"127.0.0.1:{n.port}" for n in source.nodes]
    assert [s.slots for s in shards] == [[str(r)] for r in source.ranges]
    assert facts.used_memory == sum(s.used_memory for s in shards) > shards[0].used_memory
    assert facts.cluster.uncovered == [] and facts.cluster.state == "ok"

    full = gather_source(source.nodes[0].endpoint, sample=10_000)
    assert full.sample.sampled == KEYS and full.sample.complete


def test_cluster_source_against_targets(lab_cluster: LabCluster, lab: Fleet) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    seed_cluster(source)

    # one valkey-8.0 node: the shards merge; memory.capacity gets the summed memory
    single = lab.start("valkey-8.0")
    code, doc = preflight("--source", source.url, "--to", "valkey", "--target", single.url)
    assert doc["source"]["keys"] == KEYS and doc["source"]["mode"] == "cluster"
    assert [s["keys"] for s in doc["source"]["cluster"]["shards"]] == \
        [n.client().dbsize() for n in source.nodes]
    assert severities(doc, "cluster.protocol") == ["warning"]
    assert severities(doc, "cluster.slots") == ["info"]
    assert severities(doc, "cluster.shape") == []  # cluster.protocol says it
    assert severities(doc, "cluster.shard-memory") == []  # memory.capacity compares the sum
    assert severities(doc, "cluster.databases") == []
    memory = findings(doc, "memory.capacity")[0]
    assert memory["evidence"]["source_used_memory"] == \
        sum(s["used_memory"] for s in doc["source"]["cluster"]["shards"])

    # a 2-shard valkey-9 cluster: same slot function; each primary's maxmemory vs its share
    target = lab_cluster("valkey-9", shards=2)
    for node in target.nodes:
        node.client().config_set("maxmemory", "1gb")
    code, doc = preflight("--source", source.url, "--to", "valkey", "--target", target.url)
    assert severities(doc, "cluster.protocol") == []
    assert severities(doc, "cluster.shape") == ["info"]
    assert "3 shard(s) to a 2-shard cluster" in findings(doc, "cluster.shape")[0]["title"]
    assert severities(doc, "cluster.shard-memory") == ["info"]
    assert severities(doc, "cluster.slots") == ["info"]
    assert doc["target"]["cluster"]["primaries"] == 2
    assert doc["target"]["maxmemory"] == 2 * 2**30  # the cluster's total

    small = target.nodes[1]
    small.client().config_set("maxmemory", str(1_200_000))
    code, doc = preflight("--source", source.url, "--to", "valkey", "--target", target.url)
    assert severities(doc, "cluster.shard-memory") == ["blocker"]
    blocker = findings(doc, "cluster.shard-memory")[0]
    assert f"127.0.0.1:{small.port}" in blocker["title"]
    shares = blocker["evidence"]["target_shares"]
    assert [s["slots"] for s in shares] == [8192, 8192]
    assert sum(s["share"] for s in shares) <= doc["source"]["used_memory"]
    assert code == 1

    # Dragonfly from the catalogue: no multi-node protocol; clients need emulated mode
    code, doc = preflight("--source", source.url, "--to", "dragonfly")
    assert severities(doc, "cluster.protocol") == ["blocker"]
    assert severities(doc, "cluster.shape") == ["warning"]
    assert "--cluster_mode=emulated" in findings(doc, "cluster.shape")[0]["title"]
    assert severities(doc, "cluster.shard-memory") == ["info"]
    assert severities(doc, "cluster.slots") == ["info"]
    assert code == 1


def test_deleted_slot_range_is_a_blocker(lab_cluster: LabCluster) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    node = source.nodes[0]
    node.client().execute_command("CLUSTER", "DELSLOTSRANGE", 100, 199)
    deadline = time.monotonic() + 20
    while node_state(node).get("cluster_state") != "fail":
        assert time.monotonic() < deadline, "the node never noticed the missing slots"
        time.sleep(0.1)
    code, doc = preflight("--source", node.url, "--to", "valkey")
    assert severities(doc, "cluster.slots") == ["blocker"]
    blocker = findings(doc, "cluster.slots")[0]
    assert "100-199" in blocker["title"] and blocker["evidence"]["uncovered"] == ["100-199"]
    assert doc["source"]["cluster"]["state"] == "fail"
    assert code == 1


def test_standalone_source_script_across_slots(lab: Fleet, lab_cluster: LabCluster,
                                               tmp_path: Path) -> None:
    source = lab.start("redis-7.0")
    script = tmp_path / "move.lua"
    script.write_text("local v = redis.call('GET', 'user:1')\n"
                      "redis.call('SET', 'order:7', v or '')\nreturn v\n")
    assert key_slot("user:1") != key_slot("order:7")
    client = source.client()
    client.eval(script.read_text(), 0)  # works on the standalone source
    client.mget("a", "b")
    target = lab_cluster("valkey-9", shards=2)
    code, doc = preflight("--source", source.url, "--to", "valkey", "--target", target.url,
                          "--scripts", str(script))
    assert severities(doc, "cluster.shape") == ["blocker", "warning"]
    blocker = next(f for f in findings(doc, "cluster.shape") if f["severity"] == "blocker")
    assert "CROSSSLOT" in blocker["title"] and str(script) in blocker["title"]
    warning = next(f for f in findings(doc, "cluster.shape") if f["severity"] == "warning")
    assert warning["evidence"]["calls"]["mget"] >= 1
    assert code == 1

    client.select(1)
    client.set("elsewhere", "1")  # db 1: a valkey-9 cluster started as usual has one database
    code, doc = preflight("--source", source.url, "--to", "valkey", "--target", target.url)
    assert severities(doc, "cluster.databases") == ["blocker"]


def test_valkey9_cluster_databases_into_a_one_database_cluster(lab: Fleet,
                                                               lab_cluster: LabCluster) -> None:
    source = start_lone_node(lab, "valkey-9", extra_args=["--cluster-databases", "4"])
    client = source.client()
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.monotonic() + 20
    while node_state(source).get("cluster_state") != "ok":
        assert time.monotonic() < deadline, "the one-node cluster never became ok"
        time.sleep(0.1)
    client.set("{a}:zero", "0")
    other = source.client(db=2)
    other.set("{a}:two", "2")
    target = lab_cluster("valkey-9", shards=2)
    code, doc = preflight("--source", source.url, "--to", "valkey", "--target", target.url)
    assert code == 1
    assert doc["source"]["cluster"]["databases"] == 4
    assert severities(doc, "cluster.databases") == ["blocker"]
    assert findings(doc, "cluster.databases")[0]["evidence"]["keys_per_database"] == {"2": 1}
    _, doc = preflight("--source", source.url, "--to", "dragonfly")
    assert severities(doc, "cluster.databases") == ["info"]


def test_password_protected_cluster_never_shows_the_password(lab_cluster: LabCluster) -> None:
    source = lab_cluster("redis-7.0", shards=3, password=PASSWORD)
    seed_cluster(source, 60)
    assert PASSWORD in source.url
    for fmt in ("json", "markdown"):
        result = run_cli("preflight", "--source", source.url, "--to", "dragonfly",
                         "--format", fmt)
        assert result.code == 1, result.stderr
        assert PASSWORD not in result.output
        assert "keys" in result.stdout
    _, doc = preflight("--source", source.url, "--to", "valkey")
    assert doc["source"]["keys"] == 60 and len(doc["source"]["cluster"]["shards"]) == 3


def test_a_primary_down_is_a_blocker(lab_cluster: LabCluster) -> None:
    source = lab_cluster("redis-7.0", shards=3)
    seed_cluster(source, 90)
    for node in source.nodes:
        node.client().config_set("cluster-node-timeout", "500")
    down = source.nodes[2]
    down.stop()
    deadline = time.monotonic() + 30
    while node_state(source.nodes[0]).get("cluster_state") != "fail":
        assert time.monotonic() < deadline, "the others never marked the stopped node failed"
        time.sleep(0.1)
    code, doc = preflight("--source", source.nodes[0].url, "--to", "valkey")
    blockers = [f for f in findings(doc, "cluster.slots") if f["severity"] == "blocker"]
    assert len(blockers) == 1 and f"127.0.0.1:{down.port} is " in blockers[0]["title"]
    assert str(source.ranges[2]) in blockers[0]["title"]
    assert doc["source"]["keys"] == sum(n.client().dbsize() for n in source.nodes[:2])
    assert any(f"127.0.0.1:{down.port}" in note for note in doc["source"]["notes"])
    assert code == 1
