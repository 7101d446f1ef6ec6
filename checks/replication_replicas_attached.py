"""replication.replicas-attached: the source has replicas that must be repointed."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class ReplicationReplicasAttached(Check):
    id = "replication.replicas-attached"
    title = "Replicas attached to the source"
    why = ("Replicas of the source keep following it after the cut-over: reads served by "
           "them go stale, and a failover (Sentinel, operator) could promote a replica of the "
           "old server over the new one. A Redis replica cannot follow a Valkey 8+ or "
           "Dragonfly primary (RDB version gap; Dragonfly cannot be a primary for them).")
    evidence = "INFO replication of the source: connected_slaves and each slaveN line."
    remedy = ("Plan to rebuild the replicas on the target's flavor and to repoint or "
              "reconfigure Sentinel/failover tooling at the cut-over.")
    source = f"{COMPAT} 'What each target can load' (Dragonfly cannot be a primary)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        info = ctx.source.section("replication")
        count = int(info.get("connected_slaves", 0) or 0)
        if count:
            replicas = [str(v) for k, v in sorted(info.items())
                        if k.startswith("slave") and k[5:].isdigit()]
            yield self.finding(Severity.WARNING, f"{count} replica(s) follow the source",
                               evidence={"connected_replicas": count, "replicas": replicas})
