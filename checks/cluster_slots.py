"""cluster.slots: every slot served and the cluster healthy, on the source and a live target."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.inspect.facts import ClusterFacts
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

SHOWN = 10  # uncovered ranges named in a title
DOWN = ("failed", "fail", "unreachable")  # a primary's health when its slots are not served


def _ranges(cluster: ClusterFacts) -> str:
    shown = ", ".join(cluster.uncovered[:SHOWN])
    more = len(cluster.uncovered) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


class ClusterSlots(Check):
    id = "cluster.slots"
    title = "Slot coverage and health of a cluster"
    why = ("Keys in a slot that no primary serves cannot be read: a copy of such a cluster "
           "misses them, and with cluster-require-full-coverage (the default) a cluster "
           "whose cluster_state is fail answers CLUSTERDOWN to every key command. On a cluster "
           "target, writes to an uncovered slot fail. A primary that is down or cannot be "
           "read holds slots whose keys cannot be copied. A failed (fail) or suspected (fail?) "
           "node may lose its slots to a failover in the middle of the copy.")
    evidence = ("CLUSTER INFO (cluster_state) and CLUSTER NODES (fail, fail? flags) of the node "
                "given; the slot ranges and health of every primary (CLUSTER SHARDS, or "
                "CLUSTER NODES), whether preflight could read it, and the ranges no primary "
                "serves; the same for a live cluster target.")
    remedy = ("Assign every slot to a primary (CLUSTER ADDSLOTSRANGE, or redis-cli/valkey-cli "
              "--cluster fix) and wait for cluster_state:ok; replace or forget failed nodes "
              "(CLUSTER FORGET) before the migration.")
    source = (f"{COMPAT} 'Cluster' (16,384 hash slots); Valkey docs, Cluster specification "
              "(cluster-require-full-coverage, FAIL and PFAIL flags)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        yield from self._side("source", ctx.source.cluster)
        if ctx.target.live and ctx.target.cluster_enabled:
            yield from self._side("target", ctx.target.cluster)

    def _side(self, side: str, cluster: ClusterFacts) -> Iterator[Finding]:
        if not cluster.enabled:
            return
        evidence = {"side": side, "state": cluster.state, "uncovered": cluster.uncovered,
                    "primaries": cluster.masters, "slots_assigned": cluster.slots_assigned,
                    "failed_nodes": cluster.failed_nodes}
        down = [sh for sh in cluster.shards if sh.health in DOWN]
        for shard in down:
            yield self.finding(Severity.BLOCKER, f"{side.capitalize()} primary {shard.primary} "
                               f"is {shard.health}: slots {', '.join(shard.slots[:SHOWN])} "
                               "cannot be read", "Its keys would be missing from the copy."
                               if side == "source" else "Writes to its slots fail.",
                               evidence={**evidence, "primary": shard.primary,
                                         "slots": shard.slots})
        failing = bool(cluster.state) and cluster.state != "ok"
        broken = bool(cluster.uncovered) or failing
        if cluster.uncovered or (failing and not down):  # a down primary explains a fail
            what = (f"slots {_ranges(cluster)} are served by no primary" if cluster.uncovered
                    else "not every slot is served")
            detail = (f"The {side} cluster's state is {cluster.state or 'unknown'}; {what}. "
                      + ("Keys in these slots would be missing from the copy."
                         if side == "source" else "Writes to these slots fail."))
            yield self.finding(Severity.BLOCKER, f"The {side} cluster is incomplete: {what}",
                               detail, evidence=evidence)
        down_names = {sh.primary for sh in down}
        failed = [f for f in cluster.failed_nodes if f.split(" ")[0] not in down_names]
        if failed:
            yield self.finding(Severity.WARNING, f"{len(failed)} {side} cluster "
                               f"node(s) failed or suspected: {', '.join(failed[:SHOWN])}",
                               "A failover during the migration moves slots to other nodes.",
                               evidence=evidence)
        elif not broken and not down and side == "source" and cluster.discovered:
            yield self.finding(Severity.INFO, f"All 16,384 slots served by {cluster.masters} "
                               "primaries, cluster_state ok", remediation="",
                               evidence=evidence)
