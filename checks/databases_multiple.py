"""databases.multiple: data in databases other than 0 with a target that has only one."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class DatabasesMultiple(Check):
    id = "databases.multiple"
    title = "Data outside database 0 and a target with one database"
    why = ("A cluster (Redis, Valkey before 9.0, Dragonfly) or a server run with `databases 1` "
           "has only database 0: keys in databases 1..N have nowhere to go, and clients that "
           "SELECT fail.")
    evidence = ("INFO keyspace of the source (keys per database); cluster mode and the "
                "databases setting of a live target; the catalogue's databases_in_cluster.")
    remedy = ("Merge the databases into 0 with distinct key prefixes (and change the clients), "
              "or use a standalone target, or Valkey 9+ in cluster mode.")
    source = f"{COMPAT} 'Cluster' (Valkey 9.0 allows several databases in cluster mode)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        used = {db: c.get("keys", 0) for db, c in sorted(ctx.source.keyspace.items())
                if c.get("keys", 0) and db != 0}
        if not used:
            return
        evidence = {"keys_per_database": {str(db): k for db, k in used.items()},
                    "target": ctx.target_name}
        single = False
        reason = ""
        if ctx.target.live and ctx.target.cluster_enabled and \
                not ctx.profile.value("databases_in_cluster", False):
            single, reason = True, "the target runs in cluster mode"
        elif ctx.target.live and int(ctx.target.config.get("databases", "16") or 16) == 1:
            single, reason = True, "the target is configured with databases 1"
        if single:
            yield self.finding(Severity.BLOCKER, f"{sum(used.values())} key(s) in databases "
                               f"{', '.join(map(str, used))}; {reason}", evidence=evidence,
                               source=str(ctx.profile.entry("databases_in_cluster")
                                          .get("source", self.source)))
        else:
            yield self.finding(Severity.INFO, f"Data in {len(used) + 1} databases",
                               "The copy keeps each key in its database; a cluster target "
                               "would need them merged.", remediation="", evidence=evidence)
