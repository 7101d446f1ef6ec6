"""The sides of a sync when either is a cluster: the source's primaries (one reader each) and a
target written by slot.

``cluster_sides`` returns None when neither side is a cluster (cluster_enabled:1 in INFO
cluster), so the standalone path is unchanged.
"""

from __future__ import annotations

import redis

from migrate.endpoint import Endpoint
from migrate.errors import UsageError
from migrate.protocol.cluster.router import ClusterWriter
from migrate.protocol.cluster.slots import key_slot
from migrate.protocol.cluster.topology import SlotRange, Topology, discover, is_cluster
from migrate.protocol.pipeline import PipelineWriter
from migrate.protocol.rawconn import RawConn
from migrate.serverinfo import ServerIdentity
from migrate.sync.modes import AUTO, REPLICA, SCAN
from migrate.sync.options import SyncOptions
from migrate.sync.sides import Source, Target


class ClusterTarget(Target):
    """A cluster target: writes go to the primary holding each key's slot; counts and
    FLUSHALL cover every primary."""

    def __init__(self, endpoint: Endpoint, client: redis.Redis, identity: ServerIdentity,
                 topology: Topology):
        super().__init__(endpoint, client, identity)
        self.topology = topology

    def writer(self, db: int = 0) -> PipelineWriter:
        writer = ClusterWriter(self.endpoint, db=db)
        writer.routed = True  # type: ignore[attr-defined]  # TargetWriter sends one by one
        return writer  # type: ignore[return-value]  # the same interface

    def keyspace(self) -> dict[int, int]:
        total: dict[int, int] = {}
        for primary in discover(self.endpoint).primaries():
            for db, n in Target.connect(primary).keyspace().items():
                total[db] = total.get(db, 0) + n
        return total

    def flushall(self) -> None:
        for primary in discover(self.endpoint).primaries():
            primary.client().flushall()

    def __str__(self) -> str:
        return f"{self.identity} cluster at {self.endpoint.display()} " \
               f"({len(self.topology.shards)} shards)"


class ShardTarget(Target):
    """The target as one shard's reader sees it: the same writer, but a "flush" (a full
    resync of that shard, or its resume from nothing) deletes only the keys of the shard's
    slots, so the other shards' keys stay."""

    def __init__(self, base: Target, slots: tuple[SlotRange, ...] | None):
        super().__init__(base.endpoint, base.client, base.identity)
        self.base, self.slots = base, slots

    def writer(self, db: int = 0) -> PipelineWriter:
        return self.base.writer(db)

    def keyspace(self) -> dict[int, int]:
        return self.base.keyspace()

    def flushall(self) -> None:
        if self.slots is None:  # a standalone source is the only shard: everything goes
            self.base.flushall()
        else:
            delete_slots(self.base, self.slots)


def delete_slots(target: Target, slots: tuple[SlotRange, ...]) -> int:
    """Delete every key of ``target`` whose slot is in ``slots`` (SCAN, then UNLINK in
    batches); returns how many."""
    nodes = discover(target.endpoint).primaries() if isinstance(target, ClusterTarget) \
        else [target.endpoint]
    removed = 0
    for node in nodes:
        for db in Target.connect(node).keyspace():
            with RawConn(node, db=db) as conn:
                cursor: bytes = b"0"
                while True:
                    cursor, keys = conn.call("SCAN", cursor, "COUNT", 1000)
                    doomed = [k for k in keys if any(key_slot(k) in r for r in slots)]
                    if doomed:
                        conn.call("UNLINK", *doomed)
                        removed += len(doomed)
                    if cursor == b"0":
                        break
    return removed


def cluster_sides(source: Source, target: Target, opts: SyncOptions
                  ) -> tuple[Target, list[Endpoint], list[tuple[SlotRange, ...] | None],
                             str, str] | None:
    """(target, source shards, each shard's slots, mode, why) for a sync with a cluster on
    either side."""
    source_cluster, target_cluster = is_cluster(source.client), is_cluster(target.client)
    for side, asked, found in (("source", opts.source_cluster, source_cluster),
                               ("target", opts.target_cluster, target_cluster)):
        if asked and not found:
            raise UsageError(f"--{side}-cluster, but the {side} is not in cluster mode "
                             "(cluster_enabled:0 in INFO cluster)",
                             f"give a node of the {side} cluster, or leave the flag out")
    if not (source_cluster or target_cluster):
        return None
    if opts.mode not in (AUTO, REPLICA, SCAN):
        raise UsageError(f"--mode {opts.mode} cannot work with a cluster: a cluster node "
                         "refuses REPLICAOF outside its cluster, and a single node cannot "
                         "merge several primaries",
                         "use --mode replica (or auto): one kvmigrate replica per source "
                         "primary; --mode scan where the source refuses PSYNC")
    if opts.match:
        raise UsageError("--match is not supported with a cluster yet")
    shards = [source.endpoint]
    slots: list[tuple[SlotRange, ...] | None] = [None]
    if source_cluster:
        topology = discover(source.endpoint)
        if not topology.ok or topology.coverage():
            gaps = ", ".join(str(r) for r in topology.coverage()) or "none"
            raise UsageError(f"the source cluster is not healthy (cluster_state "
                             f"{topology.state}, uncovered slots: {gaps})",
                             "fix the cluster first: `kvmigrate preflight` shows the details")
        shards = topology.primaries()
        slots = [shard.slots for shard in topology.shards]
    mode = opts.mode
    no_psync = [s for s in shards if not Source.connect(s).has("PSYNC")]
    if mode == AUTO:
        mode = SCAN if no_psync else REPLICA
    if mode == REPLICA and no_psync:
        raise UsageError(f"{no_psync[0].display()} does not offer PSYNC (renamed or "
                         "disabled): replica mode cannot follow it", "use --mode scan")
    if mode == SCAN:
        if opts.resume and source_cluster:
            raise UsageError("--resume of a scan-mode cluster sync is not supported (scan "
                             "mode re-scans and sweeps the target on resume, which is not "
                             "scoped by shard yet)", "run it again with --flush-target")
        for shard in shards:
            from migrate.sync.scan import refusal as scan_refusal

            why = scan_refusal(Source.connect(shard), target, opts)
            if why:
                raise UsageError(f"--mode scan cannot work: {shard.display()}: {why}")
    if target_cluster:
        topology = discover(target.endpoint)
        if not topology.ok or topology.coverage():
            raise UsageError(f"the target cluster is not healthy (cluster_state "
                             f"{topology.state})", "fix the target cluster first")
        if any(db for db in opts.db_map.values()):
            raise UsageError("--db-map into a database other than 0: a cluster target has "
                             "database 0 only")
        target = ClusterTarget(target.endpoint, target.client, target.identity, topology)
    what = f"{len(shards)} source primar{'y' if len(shards) == 1 else 'ies'}"
    into = f"a {len(topology.shards)}-shard cluster (writes routed by slot)" \
        if target_cluster else "one node"
    how = "replica-mode reader (PSYNC)" if mode == REPLICA else \
        "scan-mode reader (SCAN + keyspace notifications: the source refuses PSYNC)" \
        if no_psync else "scan-mode reader (SCAN + keyspace notifications)"
    return target, shards, slots, mode, f"cluster: {what} into {into}, one {how} per primary"
