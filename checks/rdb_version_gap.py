"""rdb.version-gap: can the target load the source's RDB (native REPLICAOF, RDB-file copy)?"""

from __future__ import annotations

from collections.abc import Iterator

from migrate.compat.rdb import SOURCE, can_load_rdb_of, rdb_version_written
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class RdbVersionGap(Check):
    id = "rdb.version-gap"
    title = "The target cannot load the source's RDB format"
    why = ("Native replication (REPLICAOF) and copying an RDB file both hand the target an RDB "
           "in the source's format. Redis 7.4+ and 8 write RDB 12+, which no Valkey loads in "
           "its default strict mode (Valkey 9.1.2 retries forever with \"Can't handle RDB "
           "format version 12\"); Dragonfly loads RDB 5-12 only.")
    evidence = ("The source's flavor and version (INFO server) mapped to the RDB version it "
                "writes, and the highest version the target loads (migrate/compat/rdb.py).")
    remedy = ("Use kvmigrate's replica mode or a logical copy, which transcode every key into "
              "commands the target understands; do not rely on REPLICAOF or an RDB file.")
    source = SOURCE + "; seen here: Valkey 9.1.2 replica of Redis 8.0.6"

    def run(self, ctx: Context) -> Iterator[Finding]:
        verdict = can_load_rdb_of(ctx.target_identity, ctx.source_identity)
        evidence = {"source_rdb_version": rdb_version_written(ctx.source_identity),
                    "target": ctx.target_name, "reason": verdict.reason}
        if verdict.ok:
            yield self.finding(Severity.INFO, "The target can load the source's RDB natively",
                               verdict.reason, remediation="", evidence=evidence)
        else:
            yield self.finding(Severity.WARNING, self.title,
                               f"{verdict.reason}: native REPLICAOF and RDB-file copies fail.",
                               evidence=evidence)
