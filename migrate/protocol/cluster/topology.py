"""Who holds which slots: a cluster's shards read from one of its nodes.

``CLUSTER SHARDS`` (Redis 7.0+, Valkey) is read where the server has it, ``CLUSTER NODES``
otherwise. Each node's :class:`Endpoint` takes host and port from the cluster and user,
password and TLS from the endpoint the topology was read through: cluster nodes share their
credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from migrate.endpoint import Endpoint, raw_command
from migrate.errors import KvmError, UsageError
from migrate.protocol.cluster.slots import SLOTS, key_slot


@dataclass(frozen=True, order=True)
class SlotRange:
    """Slots ``start`` to ``end``, both included."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start + 1

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and self.start <= slot <= self.end

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"


@dataclass(frozen=True)
class Node:
    id: str
    endpoint: Endpoint
    role: str  # "primary" or "replica"
    # "online", "failed" or "loading" (CLUSTER NODES: "online" or "failed"). CLUSTER SHARDS
    # says "loading" for a replica whose replication offset is still 0 (a replica of an idle
    # primary, until the primary's first replication PING), not only while it loads an RDB.
    health: str


@dataclass(frozen=True)
class Shard:
    primary: Node
    replicas: tuple[Node, ...] = ()
    slots: tuple[SlotRange, ...] = ()

    @property
    def endpoint(self) -> Endpoint:
        return self.primary.endpoint

    @property
    def replica_endpoints(self) -> list[Endpoint]:
        return [r.endpoint for r in self.replicas]

    @property
    def slot_count(self) -> int:
        return sum(len(r) for r in self.slots)

    def owns(self, slot: int) -> bool:
        return any(slot in r for r in self.slots)


@dataclass(frozen=True)
class Topology:
    shards: tuple[Shard, ...]
    state: str = "unknown"  # cluster_state from CLUSTER INFO: "ok" or "fail"
    source: str = "shards"  # "shards" (CLUSTER SHARDS) or "nodes" (CLUSTER NODES)
    info: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The node the topology was read from says cluster_state:ok."""
        return self.state == "ok"

    def primaries(self) -> list[Endpoint]:
        return [s.primary.endpoint for s in self.shards]

    def shard_for_slot(self, slot: int) -> Shard | None:
        """The shard that serves ``slot``, or None when no shard has it."""
        if not 0 <= slot < SLOTS:
            raise ValueError(f"slot {slot} is outside 0-{SLOTS - 1}")
        for shard in self.shards:
            if shard.owns(slot):
                return shard
        return None

    def shard_for_key(self, key: bytes | str) -> Shard | None:
        return self.shard_for_slot(key_slot(key))

    def coverage(self) -> list[SlotRange]:
        """The slot ranges no shard serves (empty when all 16384 are covered)."""
        covered = sorted(r for s in self.shards for r in s.slots)
        gaps: list[SlotRange] = []
        next_slot = 0
        for r in covered:
            if r.start > next_slot:
                gaps.append(SlotRange(next_slot, r.start - 1))
            next_slot = max(next_slot, r.end + 1)
        if next_slot < SLOTS:
            gaps.append(SlotRange(next_slot, SLOTS - 1))
        return gaps


def is_cluster(client: redis.Redis) -> bool:
    """Whether the server runs in cluster mode (``INFO cluster``: ``cluster_enabled:1``)."""
    try:
        info = client.info("cluster")
    except redis.ResponseError:
        return False
    return str(info.get("cluster_enabled", 0)) == "1"


def discover(endpoint: Endpoint) -> Topology:
    """Read the cluster's topology through ``endpoint`` (any node of it)."""
    client = endpoint.client()
    try:
        if not is_cluster(client):
            raise UsageError(f"{endpoint.display()} is not a cluster node (cluster_enabled:0)",
                             "give the URL of a node of the cluster")
        info = parse_cluster_info(_text(raw_command(client, "CLUSTER", "INFO")))
        try:
            reply = raw_command(client, "CLUSTER", "SHARDS")
        except redis.ResponseError as exc:
            if "unknown" not in str(exc).lower():
                raise KvmError(f"{endpoint.display()} refused CLUSTER SHARDS: {exc}") from None
            text = _text(raw_command(client, "CLUSTER", "NODES"))
            shards, source = parse_cluster_nodes(text, endpoint), "nodes"
        else:
            shards, source = parse_cluster_shards(reply, endpoint), "shards"
    finally:
        client.close()
    shards.sort(key=lambda s: s.slots[0].start if s.slots else SLOTS)
    return Topology(tuple(shards), state=info.get("cluster_state", "unknown"), source=source,
                    info=info)


def parse_cluster_info(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _fields(value: Any) -> dict[str, Any]:
    """A RESP3 map or a RESP2 flat list of name, value pairs, as a dict with str keys."""
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    else:
        items = zip(value[::2], value[1::2], strict=True)
    return {_text(k): v for k, v in items}


def _node_endpoint(base: Endpoint, host: str, port: int) -> Endpoint:
    # A node that has not met another node yet does not know its own address ("" or "?"):
    # it is the node the topology was read from, so its host is the one connected to.
    if not host or host == "?":
        host = base.host
    return replace(base, host=host, port=port or base.port, db=0)


def parse_cluster_shards(reply: Any, base: Endpoint) -> list[Shard]:
    """Shards from a ``CLUSTER SHARDS`` reply (RESP2 or RESP3); a shard is kept when it has a
    primary."""
    shards = []
    for raw_shard in reply:
        shard = _fields(raw_shard)
        bounds = [int(b) for b in shard.get("slots", [])]
        slots = tuple(SlotRange(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=True))
        primary, replicas = None, []
        for raw_node in shard.get("nodes", []):
            n = _fields(raw_node)
            node_id = _text(n.get("id", ""))
            host = _text(n.get("endpoint") or n.get("ip") or "")
            port = int(n.get("tls-port", 0) or 0) if base.tls else 0
            port = port or int(n.get("port", 0) or 0)
            role = "primary" if _text(n.get("role", "")) == "master" else "replica"
            node = Node(node_id, _node_endpoint(base, host, port),
                        role, _text(n.get("health", "online")))
            if role == "primary":
                primary = node
            else:
                replicas.append(node)
        if primary is not None:
            shards.append(Shard(primary, tuple(replicas), slots))
    return shards


def parse_cluster_nodes(text: str, base: Endpoint) -> list[Shard]:
    """Shards from ``CLUSTER NODES`` text: one per primary, with its replicas and slots.

    Slots being migrated or imported (``[slot->-id]``, ``[slot-<-id]``) are left out; nodes
    still in handshake or without an address are skipped.
    """
    primaries: dict[str, tuple[Node, list[SlotRange]]] = {}
    replicas: dict[str, list[Node]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        node_id, address, flags_text, master_id = parts[:4]
        flags = set(flags_text.split(","))
        if flags & {"handshake", "noaddr"}:
            continue
        host, port = _parse_address(address)
        failed = bool(flags & {"fail", "fail?"}) or parts[7] != "connected"
        health = "failed" if failed else "online"
        endpoint = _node_endpoint(base, host, port)
        if "master" in flags:
            node = Node(node_id, endpoint, "primary", health)
            primaries[node_id] = (node, _parse_slots(parts[8:]))
        elif "slave" in flags or "replica" in flags:
            replicas.setdefault(master_id, []).append(Node(node_id, endpoint, "replica", health))
    return [Shard(node, tuple(replicas.get(node_id, ())), tuple(slots))
            for node_id, (node, slots) in primaries.items()]


def _parse_address(address: str) -> tuple[str, int]:
    """``ip:port@cport[,hostname]`` (Redis 7+), ``ip:port@cport`` or ``ip:port``."""
    hostport = address.split(",", 1)[0].split("@", 1)[0]
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def _parse_slots(tokens: Sequence[str]) -> list[SlotRange]:
    ranges = []
    for token in tokens:
        if token.startswith("["):
            continue
        start, _, end = token.partition("-")
        ranges.append(SlotRange(int(start), int(end or start)))
    return sorted(ranges)
