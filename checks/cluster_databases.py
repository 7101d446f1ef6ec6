"""cluster.databases: keys in databases other than 0 and how many databases a cluster has."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class ClusterDatabases(Check):
    id = "cluster.databases"
    title = "Databases other than 0 and a cluster"
    why = ("A Redis cluster, and a Valkey cluster before 9.0, has only database 0. Valkey 9.0 "
           "allows several databases in cluster mode, but only as many as the node was started "
           "with (`cluster-databases`, default 1, immutable): keys in database N need a target "
           "cluster with cluster-databases > N, or they have nowhere to go and SELECT N fails. "
           "(A target whose version has no databases in cluster mode at all is reported by "
           "databases.multiple.)")
    evidence = ("INFO keyspace of every source primary (keys per database, summed); "
                "cluster-databases of the source and of a live cluster target (CONFIG GET); "
                "the catalogue's databases_in_cluster and cluster_databases.")
    remedy = ("Start every target cluster node with cluster-databases above the highest "
              "database in use (Valkey 9+), or merge the databases into 0 with distinct key "
              "prefixes (and change the clients), or use a standalone target.")
    source = (f"{COMPAT} 'Cluster' (Valkey 9.0 allows several databases in cluster mode); "
              "checks/data/targets.yaml (databases_in_cluster, cluster_databases)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        source = ctx.source.cluster
        used = {db: c.get("keys", 0) for db, c in sorted(ctx.source.keyspace.items())
                if c.get("keys", 0) and db != 0}
        evidence = {"keys_per_database": {str(db): k for db, k in used.items()},
                    "source_mode": "cluster" if source.enabled else "standalone",
                    "source_cluster_databases": source.databases if source.enabled else None,
                    "target": ctx.target_name}
        entry = ctx.profile.entry("cluster_databases")
        cite = str(entry.get("source", self.source))
        in_cluster = bool(ctx.profile.value("databases_in_cluster", False))
        if not used:
            if source.enabled and source.databases > 1:
                yield self.finding(Severity.INFO, f"The source cluster has {source.databases} "
                                   "databases (cluster-databases); only database 0 holds keys",
                                   remediation="", evidence=evidence)
            return
        highest = max(used)
        total = sum(used.values())
        if ctx.target.live and ctx.target.cluster_enabled:
            if not in_cluster:
                return  # databases.multiple: this target version has database 0 only
            have = ctx.target.cluster.databases or int(entry.get("value", 1) or 1)
            evidence["target_cluster_databases"] = have
            if highest >= have:
                yield self.finding(Severity.BLOCKER, f"{total} key(s) in databases "
                                   f"{', '.join(map(str, used))}; the target cluster has "
                                   f"{have} database(s) (cluster-databases {have})",
                                   f"Keys in database {highest} have nowhere to go on "
                                   f"{ctx.target_name} in cluster mode.", evidence=evidence,
                                   source=cite)
            else:
                yield self.finding(Severity.INFO, f"The target cluster has {have} databases: "
                                   f"room for databases up to {highest}", remediation="",
                                   evidence=evidence)
            return
        if not source.enabled or ctx.target.live:
            return  # standalone to standalone: databases.multiple
        if not in_cluster and ctx.target.flavor != "dragonfly":
            yield self.finding(Severity.BLOCKER, f"{total} key(s) in databases "
                               f"{', '.join(map(str, used))} of the source cluster; a "
                               f"{ctx.target_name} cluster has database 0 only",
                               "Only a standalone target of this version can keep them.",
                               evidence=evidence, source=cite)
        elif ctx.target.flavor == "dragonfly":
            yield self.finding(Severity.INFO, f"Source cluster with keys in databases "
                               f"{', '.join(map(str, used))}",
                               "One Dragonfly node keeps each database (dbnum, 16 by default).",
                               remediation="", evidence=evidence, source=cite)
        else:
            yield self.finding(Severity.INFO, f"Source cluster with keys in databases "
                               f"{', '.join(map(str, used))}: a {ctx.target_name} cluster "
                               f"needs cluster-databases {highest + 1} or more",
                               "cluster-databases defaults to 1 and is set when the node "
                               "starts.", evidence=evidence, source=cite)
