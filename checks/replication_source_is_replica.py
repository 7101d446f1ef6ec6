"""replication.source-is-replica: preflight was pointed at a replica."""

from __future__ import annotations

from collections.abc import Iterator

from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class ReplicationSourceIsReplica(Check):
    id = "replication.source-is-replica"
    title = "The source is a replica"
    why = ("A replica's INFO commandstats shows only the reads sent to it, not the writes "
           "the application sends to the primary, so commands.unsupported could miss commands; "
           "copying from a replica is fine, but it may lag its primary.")
    evidence = "INFO replication of the source: role, master_host, master_link_status."
    remedy = "Run preflight against the primary as well, to see every command clients send."
    source = "Redis INFO replication documentation"

    def run(self, ctx: Context) -> Iterator[Finding]:
        info = ctx.source.section("replication")
        if info.get("role") in ("slave", "replica"):
            yield self.finding(Severity.WARNING, "The source is a replica",
                               evidence={"master_link_status":
                                         info.get("master_link_status", "")})
