"""Whole-cluster facts: when a source or target is a cluster node, read every primary.

:func:`cluster_facts` reads the node given (CLUSTER INFO, CLUSTER NODES: state, node counts,
failed nodes). :func:`gather_source_cluster` then discovers the topology
(:func:`migrate.protocol.cluster.topology.discover`) and reads each primary: INFO (memory, keyspace,
commandstats) and a share of the key sample, so the checks see the cluster's totals (key
counts and memory summed, the sample spread over the primaries in proportion to their keys,
its total the same as for a standalone source) and the per-shard figures in
:class:`ClusterFacts`. :func:`gather_target_cluster` does the same for a cluster target
(primaries, their maxmemory and slots). Read-only, through :class:`Probe` like the rest.
"""

from __future__ import annotations

from typing import Any

from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.inspect.facts import ClusterFacts, KeySample, ShardFacts, SourceFacts, TargetFacts
from migrate.inspect.info import commandstats_of, keyspace_of, parse_info
from migrate.inspect.probe import Probe, pairs, text
from migrate.inspect.sample import KEEP_BIG, budgets, sample_keys, supports_field_ttl
from migrate.protocol.cluster.topology import Topology, discover
from migrate.serverinfo import ServerIdentity

FAIL_FLAGS = ("fail", "fail?")


def node_name(endpoint: Endpoint) -> str:
    return f"{endpoint.host}:{endpoint.port}"


def parse_nodes(raw: str) -> tuple[int, int, list[str]]:
    """(primaries, replicas, failed nodes "host:port (fail|fail?)") from CLUSTER NODES."""
    masters = replicas = 0
    failed: list[str] = []
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        flags = parts[2].split(",")
        if "master" in flags:
            masters += 1
        elif "slave" in flags or "replica" in flags:
            replicas += 1
        bad = [f for f in FAIL_FLAGS if f in flags]
        if bad:
            address = parts[1].split(",", 1)[0].split("@", 1)[0]
            failed.append(f"{address} ({bad[0]})")
    return masters, replicas, failed


def cluster_facts(probe: Probe, info: dict[str, dict[str, Any]],
                  config: dict[str, str] | None = None) -> ClusterFacts:
    """What the node given says about its cluster (empty facts when not in cluster mode)."""
    if not int(info.get("cluster", {}).get("cluster_enabled", 0) or 0):
        return ClusterFacts()
    cinfo = {}
    for line in text(probe.call("CLUSTER", "INFO")).splitlines():
        name, sep, value = line.strip().partition(":")
        if sep:
            cinfo[name] = value
    masters, replicas, failed = parse_nodes(text(probe.call("CLUSTER", "NODES")))
    databases = int((config or {}).get("cluster-databases", "1") or 1)
    return ClusterFacts(enabled=True, state=str(cinfo.get("cluster_state", "")),
                        masters=masters, replicas=replicas,
                        slots_assigned=int(cinfo.get("cluster_slots_assigned", 0) or 0),
                        failed_nodes=failed, databases=max(databases, 1))


def _with_topology(cluster: ClusterFacts, topology: Topology) -> None:
    cluster.uncovered = [str(r) for r in topology.coverage()]
    cluster.shards = [ShardFacts(primary=node_name(s.primary.endpoint),
                                 slots=[str(r) for r in s.slots], slot_count=s.slot_count,
                                 health=s.primary.health) for s in topology.shards]
    if topology.state and topology.state != "unknown":
        cluster.state = topology.state


def _add_counts(total: dict[int, dict[str, int]], part: dict[int, dict[str, int]]) -> None:
    for db, counts in part.items():
        into = total.setdefault(db, {})
        for name, value in counts.items():
            if name == "avg_ttl":  # an average: keep the largest rather than a sum
                into[name] = max(into.get(name, 0), value)
            else:
                into[name] = into.get(name, 0) + value


def _merge_sample(total: KeySample, part: KeySample) -> None:
    total.sampled += part.sampled
    for name, count in part.types.items():
        total.types[name] = total.types.get(name, 0) + count
    for name, count in part.encodings.items():
        total.encodings[name] = total.encodings.get(name, 0) + count
    total.with_ttl += part.with_ttl
    total.memory_sampled += part.memory_sampled
    total.big_keys.extend(part.big_keys)
    total.field_ttl_keys.extend(part.field_ttl_keys)
    total.field_ttl_checked = total.field_ttl_checked or part.field_ttl_checked


def _unreachable(cluster: ClusterFacts, shard: ShardFacts, notes: list[str],
                 exc: KvmError) -> None:
    """A primary that cannot be read: a failed node for the checks, a note for the report."""
    shard.health = "unreachable"
    if not any(f.startswith(f"{shard.primary} ") for f in cluster.failed_nodes):
        cluster.failed_nodes.append(f"{shard.primary} (unreachable)")
    notes.append(f"primary {shard.primary} could not be read ({exc.message}): its keys and "
                 "memory are missing from the totals")


def gather_source_cluster(endpoint: Endpoint, facts: SourceFacts, identity: ServerIdentity,
                          *, limit: int) -> int:
    """Read every primary of the source cluster into ``facts`` (totals, shards, sample);
    returns the commands sent."""
    topology = discover(endpoint)
    _with_topology(facts.cluster, topology)
    sent = 0
    keyspace: dict[int, dict[str, int]] = {}
    commandstats: dict[str, int] = {}
    used = dataset = 0
    per_shard: list[tuple[Probe, dict[int, dict[str, int]]]] = []
    probes: list[Probe] = []
    try:
        for shard, shard_facts in zip(topology.shards, facts.cluster.shards, strict=True):
            try:
                probe = Probe(shard.primary.endpoint)
                probes.append(probe)
                info = parse_info(probe.call("INFO", "all"))
            except KvmError as exc:
                _unreachable(facts.cluster, shard_facts, facts.notes, exc)
                continue
            memory = info.get("memory", {})
            shard_facts.used_memory = int(memory.get("used_memory", 0) or 0)
            shard_facts.maxmemory = int(memory.get("maxmemory", 0) or 0)
            space = keyspace_of(info)
            shard_facts.keys = sum(c.get("keys", 0) for c in space.values())
            shard_facts.dataset_memory = int(memory.get("used_memory_dataset", 0) or 0)
            used += shard_facts.used_memory
            dataset += shard_facts.data_memory
            _add_counts(keyspace, space)
            for name, calls in commandstats_of(info).items():
                commandstats[name] = commandstats.get(name, 0) + calls
            per_shard.append((probe, space))
        shares = budgets({i: {"keys": sum(c.get("keys", 0) for c in space.values())}
                          for i, (_, space) in enumerate(per_shard)}, limit)
        sample = KeySample(limit=limit, field_ttl_checked=supports_field_ttl(identity))
        for i, (probe, space) in enumerate(per_shard):
            if shares.get(i):
                part = sample_keys(probe, SourceFacts(keyspace=space), identity,
                                   limit=shares[i])
                _merge_sample(sample, part)
        sample.big_keys.sort(key=lambda k: k.memory, reverse=True)
        del sample.big_keys[KEEP_BIG:]
    finally:
        for probe in probes:
            sent += probe.sent
            probe.close()
    memory_info = facts.info.setdefault("memory", {})
    memory_info["used_memory_node"] = memory_info.get("used_memory", 0)
    memory_info["used_memory"] = used
    memory_info["used_memory_dataset"] = dataset
    facts.keyspace = keyspace
    facts.commandstats = commandstats
    facts.cluster.masters = len(topology.shards)
    sample.complete = sample.sampled >= facts.total_keys
    facts.sample = sample
    facts.notes.append(f"cluster mode: keys, memory, command counts and the key sample are "
                       f"summed over the {len(topology.shards)} primaries")
    return sent


def gather_target_cluster(endpoint: Endpoint, facts: TargetFacts) -> None:
    """Read every primary of a cluster target into ``facts``: shards with their maxmemory,
    used memory and keys; ``keys``, used_memory and maxmemory become the cluster's totals
    (maxmemory 0 when any primary has no limit)."""
    probe = Probe(endpoint)
    try:
        facts.cluster = cluster_facts(probe, facts.info, facts.config)
    finally:
        probe.close()
    topology = discover(endpoint)
    _with_topology(facts.cluster, topology)
    for shard, shard_facts in zip(topology.shards, facts.cluster.shards, strict=True):
        try:
            probe = Probe(shard.primary.endpoint)
        except KvmError as exc:
            _unreachable(facts.cluster, shard_facts, [], exc)
            continue
        try:
            info = parse_info(probe.call("INFO", "memory"))
            keyspace = keyspace_of(parse_info(probe.call("INFO", "keyspace")))
            maxmemory = pairs(probe.try_call("CONFIG", "GET", "maxmemory")).get("maxmemory")
        except KvmError as exc:
            _unreachable(facts.cluster, shard_facts, [], exc)
            continue
        finally:
            probe.close()
        shard_facts.used_memory = int(info.get("memory", {}).get("used_memory", 0) or 0)
        shard_facts.maxmemory = int(text(maxmemory) or 0) if maxmemory is not None else \
            int(info.get("memory", {}).get("maxmemory", 0) or 0)
        shard_facts.keys = sum(c.get("keys", 0) for c in keyspace.values())
    shards = facts.cluster.shards
    facts.cluster.masters = len(shards)
    facts.keys = sum(s.keys for s in shards)
    facts.info.setdefault("memory", {})["used_memory"] = sum(s.used_memory for s in shards)
    if shards:
        limits = [s.maxmemory for s in shards]
        facts.config["maxmemory"] = str(sum(limits) if all(limits) else 0)
