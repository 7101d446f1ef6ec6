"""persistence.bgsave-failing: the source's last snapshot or AOF write failed."""

from __future__ import annotations

from collections.abc import Iterator

from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class PersistenceBgsaveFailing(Check):
    id = "persistence.bgsave-failing"
    title = "The source cannot write snapshots"
    why = ("Replica mode and RDB copies start from a snapshot (BGSAVE or a replication "
           "fork): if the source's last BGSAVE or AOF write failed (disk full, fork refused "
           "for lack of memory), the copy fails too, and the source may be refusing writes "
           "(stop-writes-on-bgsave-error).")
    evidence = "INFO persistence of the source: rdb_last_bgsave_status, aof_last_write_status."
    remedy = ("Fix the cause in the source's log (disk space, vm.overcommit_memory, memory "
              "for the fork) before the migration.")
    source = "Redis INFO persistence documentation"

    def run(self, ctx: Context) -> Iterator[Finding]:
        info = ctx.source.section("persistence")
        bad = {k: info[k] for k in ("rdb_last_bgsave_status", "aof_last_write_status",
                                    "aof_last_bgrewrite_status") if k in info
               and str(info[k]) not in ("ok", "")}
        if bad:
            yield self.finding(Severity.WARNING, "The source's last persistence write failed",
                               evidence=bad)
