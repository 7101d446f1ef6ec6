"""cluster.protocol: a Redis Cluster source and what the target's cluster support means."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class ClusterProtocol(Check):
    id = "cluster.protocol"
    title = "Cluster topology the target must serve"
    why = ("Cluster-aware clients expect CLUSTER SLOTS/SHARDS and MOVED redirections. "
           "Dragonfly has no multi-node cluster protocol (cluster_mode=emulated answers as one "
           "node; `yes` needs an external control plane), so a Redis Cluster source merges "
           "into one node only if no client needs multi-node topology. A Valkey cluster uses "
           "the same 16,384 slots, but a standalone target breaks cluster clients. (Slot "
           "coverage and health: cluster.slots; shapes, multi-key commands and CROSSSLOT: "
           "cluster.shape.)")
    evidence = ("INFO cluster, CLUSTER INFO (state, slots assigned) and CLUSTER NODES (masters, "
                "replicas) of the source; INFO cluster of a live target.")
    remedy = ("Dragonfly: merge into one node only when no client needs the multi-node "
              "topology (cluster.shape says what clients need), or keep a Valkey cluster. "
              "Valkey: a cluster target (any number of shards) keeps cluster clients working; "
              "a standalone one needs them switched to standalone mode.")
    source = f"{COMPAT} 'Cluster'; checks/data/targets.yaml (cluster_protocol)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        cluster = ctx.source.cluster
        entry = ctx.profile.entry("cluster_protocol")
        target_cluster = ctx.target.cluster_enabled
        evidence = {"source_cluster": cluster.enabled, "state": cluster.state,
                    "masters": cluster.masters, "replicas": cluster.replicas,
                    "slots_assigned": cluster.slots_assigned, "target": ctx.target_name}
        if cluster.enabled and not entry.get("value", True):
            yield self.finding(Severity.BLOCKER, f"Redis Cluster source; {ctx.target_name} "
                               "has no multi-node cluster protocol",
                               f"The source is a cluster of {cluster.masters} master(s).",
                               evidence=evidence, source=str(entry.get("source", self.source)))
            return
        if cluster.enabled and ctx.target.live and not target_cluster:
            yield self.finding(Severity.WARNING, "Cluster source, standalone target",
                               f"The {cluster.masters} shard(s) merge into one node: "
                               "cluster-mode clients cannot use it and must switch to a "
                               "standalone client.", evidence=evidence)
