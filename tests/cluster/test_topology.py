"""Lab clusters come up whole and discover() reads them back, on real servers of each
flavour: CLUSTER SHARDS, and the CLUSTER NODES fallback on a node's real output."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
import redis

from migrate.endpoint import Endpoint, raw_command
from migrate.errors import LabError, UsageError
from migrate.lab.cluster import (
    ClusterHandle,
    node_state,
    slot_ranges,
    start_cluster,
    start_lone_node,
)
from migrate.lab.fleet import Fleet
from migrate.protocol.cluster.slots import SLOTS, key_slot
from migrate.protocol.cluster.topology import (
    Shard,
    SlotRange,
    Topology,
    discover,
    is_cluster,
    parse_cluster_nodes,
    parse_cluster_shards,
)

SPECS = ["redis-7.0", "valkey-8.0", "valkey-9"]
LabCluster = Callable[..., ClusterHandle]


def test_slot_ranges_are_even_and_cover_everything() -> None:
    for shards in (1, 2, 3, 5, 7, 64):
        ranges = slot_ranges(shards)
        assert ranges[0].start == 0 and ranges[-1].end == SLOTS - 1
        assert all(a.end + 1 == b.start for a, b in pairwise(ranges))
        assert max(map(len, ranges)) - min(map(len, ranges)) <= 1
    assert [str(r) for r in slot_ranges(3)] == ["0-5460", "5461-10921", "10922-16383"]


def _shape(topology: Topology) -> list[tuple[int, tuple[SlotRange, ...]]]:
    return [(s.primary.endpoint.port, s.slots) for s in topology.shards]


@pytest.mark.parametrize("spec", SPECS)
def test_three_shards_come_up_and_are_discovered(lab_cluster: LabCluster, spec: str) -> None:
    handle = lab_cluster(spec, shards=3)
    expected = [(n.port, (r,)) for n, r in zip(handle.nodes, handle.ranges, strict=True)]
    for node in handle.nodes:
        info = node_state(node)
        assert info["cluster_state"] == "ok" and info["cluster_slots_ok"] == str(SLOTS)
        assert info["cluster_known_nodes"] == "3"
        assert (Path(node.directory) / "nodes.conf").exists()  # in the node's own folder
        client = node.client(decode_responses=True)
        assert is_cluster(client)
        assert client.config_get("appendonly")["appendonly"] == "no"

    for node in handle.nodes:  # any node gives the same answer
        topology = discover(node.endpoint)
        assert topology.ok and topology.state == "ok" and topology.source == "shards"
        assert _shape(topology) == expected
        assert topology.primaries() == handle.endpoints
        assert topology.coverage() == []
        assert all(s.replicas == () and s.primary.health == "online" for s in topology.shards)

    topology = discover(handle.endpoint)
    for key in (b"a", b"{user1}:x", b"\x00\xff"):
        shard = topology.shard_for_key(key)
        assert shard is not None and shard.owns(key_slot(key))
        # the owner takes the write; another node answers MOVED to the owner
        owner = shard.primary.endpoint.client()
        assert owner.set(key, b"v")
        other = next(e for e in topology.primaries() if e != shard.primary.endpoint).client()
        moved = f"^{key_slot(key)} 127.0.0.1:{shard.primary.endpoint.port}$"
        with pytest.raises(redis.exceptions.MovedError, match=moved):
            other.get(key)
    assert topology.shard_for_slot(0) is topology.shards[0]
    assert topology.shard_for_slot(SLOTS - 1) is topology.shards[-1]
    with pytest.raises(ValueError):
        topology.shard_for_slot(SLOTS)


@pytest.mark.parametrize("spec", SPECS)
def test_cluster_nodes_fallback_reads_the_same_topology(lab_cluster: LabCluster,
                                                        spec: str) -> None:
    handle = lab_cluster(spec, shards=3)
    for node in handle.nodes:
        client = node.client()
        text = raw_command(client, "CLUSTER", "NODES")
        shards_reply = raw_command(client, "CLUSTER", "SHARDS")
        assert isinstance(text, bytes)
        from_nodes = parse_cluster_nodes(text.decode(), node.endpoint)
        from_shards = parse_cluster_shards(shards_reply, node.endpoint)
        assert _nodes(from_nodes) == _nodes(from_shards)
        assert {s.primary.id: s.slots for s in from_nodes} == \
            {s.primary.id: s.slots for s in from_shards}
        assert sorted(s.primary.endpoint.port for s in from_nodes) == \
            sorted(n.port for n in handle.nodes)
        assert Topology(tuple(from_nodes)).coverage() == []


def _nodes(shards: list[Shard]) -> list[tuple[str, str, int, str, str]]:
    """Who is who (health left out: the two commands judge a new replica differently)."""
    return sorted((s.primary.id, n.id, n.endpoint.port, n.role, n.endpoint.host)
                  for s in shards for n in (s.primary, *s.replicas))


@pytest.mark.parametrize("spec", ["redis-7.0", "valkey-9"])
def test_replicas_are_found_by_both_commands(lab_cluster: LabCluster, spec: str) -> None:
    handle = lab_cluster(spec, shards=2, replicas=1, password="pw")
    assert [n.name for n in handle.all_nodes][-2:] == [r.name for [r] in handle.replicas]
    for node in handle.all_nodes:
        topology = discover(node.endpoint)
        assert topology.ok and topology.coverage() == []
        assert topology.primaries() == handle.endpoints
        assert [s.replica_endpoints for s in topology.shards] == \
            [[r.endpoint for r in shard] for shard in handle.replicas]
        assert all(r.role == "replica" and r.health in ("online", "loading")
                   for s in topology.shards for r in s.replicas)
        client = node.client()
        text = raw_command(client, "CLUSTER", "NODES")
        assert isinstance(text, bytes)
        from_nodes = parse_cluster_nodes(text.decode(), node.endpoint)
        assert _nodes(from_nodes) == _nodes(list(topology.shards))
    replica = handle.replicas[0][0].client(decode_responses=True)
    assert replica.info("replication")["master_link_status"] == "up"


def test_cluster_nodes_parser_handles_replicas_migrations_and_old_formats() -> None:
    base = Endpoint("10.0.0.9", 7000, username="app", password="pw", tls=True)
    text = "\n".join([
        # Redis 7+: hostname after the bus port; a slot being migrated and one imported
        "a1 10.0.0.1:7000@17000,node-a myself,master - 0 0 1 connected 0-99 200 "
        "[100->-b1] [101-<-b1]",
        "a2 10.0.0.2:7000@17000,node-a2 slave a1 0 1 1 connected",
        # Redis 4-6: no hostname; Redis 3: no bus port
        "b1 10.0.0.3:7001@17001 master,fail - 0 1 2 disconnected 100-199 201-16383",
        "c1 10.0.0.4:7002 master - 0 1 3 connected",
        "d1 :0@0 handshake - 0 0 0 connected",
        "",
    ])
    shards = {s.primary.id: s for s in parse_cluster_nodes(text, base)}
    assert set(shards) == {"a1", "b1", "c1"}
    a = shards["a1"]
    assert a.slots == (SlotRange(0, 99), SlotRange(200, 200))
    assert a.primary.endpoint == Endpoint("10.0.0.1", 7000, username="app", password="pw",
                                          tls=True)
    assert [r.endpoint.host for r in a.replicas] == ["10.0.0.2"]
    assert a.replica_endpoints[0].password == "pw"
    assert shards["b1"].primary.health == "failed"
    assert shards["c1"].slots == () and shards["c1"].primary.endpoint.port == 7002
    topology = Topology(tuple(shards.values()))
    assert topology.coverage() == []
    assert topology.shard_for_slot(150) is shards["b1"]
    partial = Topology((a,))
    assert partial.coverage() == [SlotRange(100, 199), SlotRange(201, 16383)]


def test_a_lone_node_that_met_nobody_reads_as_the_endpoint_host(lab: Fleet) -> None:
    node = start_lone_node(lab, "valkey-8.0")
    topology = discover(node.endpoint)
    [shard] = topology.shards
    assert shard.primary.endpoint == node.endpoint and shard.slots == ()
    assert not topology.ok and topology.coverage() == [SlotRange(0, SLOTS - 1)]
    text = raw_command(node.client(), "CLUSTER", "NODES")
    assert isinstance(text, bytes)
    [shard] = parse_cluster_nodes(text.decode(), node.endpoint)
    assert shard.primary.endpoint == node.endpoint


def test_deleted_slots_show_as_uncovered(lab_cluster: LabCluster) -> None:
    handle = lab_cluster("redis-7.0", shards=2)
    raw_command(handle.nodes[1].client(), "CLUSTER", "DELSLOTSRANGE", 9000, 9099)
    topology = discover(handle.nodes[1].endpoint)
    assert topology.coverage() == [SlotRange(9000, 9099)]
    assert topology.shard_for_slot(9050) is None


def test_discover_refuses_a_server_that_is_not_a_cluster(lab: Fleet) -> None:
    node = lab.start("redis-7.0")
    assert not is_cluster(node.client())
    with pytest.raises(UsageError, match="not a cluster node"):
        discover(node.endpoint)


@pytest.mark.parametrize("spec", ["redis-7.0", "valkey-9"])
def test_cluster_with_a_password(lab_cluster: LabCluster, spec: str) -> None:
    handle = lab_cluster(spec, shards=3, password="s3cret")
    for node in handle.nodes:
        client = node.client(decode_responses=True)
        assert client.config_get("requirepass") == {"requirepass": "s3cret"}
        assert client.config_get("masterauth") == {"masterauth": "s3cret"}
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=node.port).ping()
    assert handle.url.startswith("redis://:s3cret@127.0.0.1:")
    assert "s3cret" not in str(handle.endpoint)
    topology = discover(Endpoint.parse(handle.url))
    assert topology.ok and topology.coverage() == []
    assert all(e.password == "s3cret" for e in topology.primaries())
    assert [e.port for e in topology.primaries()] == [n.port for n in handle.nodes]


def test_start_cluster_in_a_directory_and_stop(installed_specs: object, tmp_path: Path) -> None:
    handle = start_cluster(tmp_path / "c", "valkey-8.0", 1)
    try:
        [node] = handle.nodes
        assert Path(node.directory).parent == tmp_path / "c"
        assert node.name.endswith("-0") and handle.ranges == [SlotRange(0, SLOTS - 1)]
        reply = raw_command(node.client(), "CLUSTER", "SHARDS")
        assert isinstance(reply, list) and len(reply) == 1
        topology = discover(handle.endpoint)
        assert topology.ok and _shape(topology) == [(node.port, (SlotRange(0, SLOTS - 1),))]
    finally:
        handle.stop()
    assert not node.alive()


def test_a_cluster_not_ready_in_time_is_one_clear_error_and_stopped(lab: Fleet) -> None:
    with pytest.raises(LabError, match=r"did not reach cluster_state:ok within 0s: \S+-0 "
                                       r"reports cluster_state:fail.*known nodes ./3"):
        start_cluster(lab, "redis-7.0", 3, timeout=0.001)
    assert len(lab.servers) == 3 and not any(s.alive() for s in lab.servers)
