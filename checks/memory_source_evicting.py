"""memory.source-evicting: the source is evicting keys under memory pressure."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import mib
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class MemorySourceEvicting(Check):
    id = "memory.source-evicting"
    title = "The source evicts keys"
    why = ("A source that evicts keys under maxmemory is a cache losing data on its own: keys "
           "vanish between the copy and the verification, so counts differ for reasons that "
           "are not the migration's; the extra memory a replication fork or a copy's output "
           "buffers need can push it into more eviction.")
    evidence = ("INFO stats evicted_keys, and maxmemory, maxmemory-policy and used_memory of "
                "the source.")
    remedy = ("Run the copy at a quiet time or raise the source's maxmemory for the migration, "
              "and expect verification to report evicted keys as missing (re-verify them).")
    source = "Redis docs: key eviction (maxmemory-policy); INFO stats evicted_keys"

    def run(self, ctx: Context) -> Iterator[Finding]:
        evicted = int(ctx.source.section("stats").get("evicted_keys", 0) or 0)
        maxmemory = int(ctx.source.config.get("maxmemory", "0") or 0)
        policy = ctx.source.config.get("maxmemory-policy", "noeviction")
        if evicted <= 0:
            return
        yield self.finding(Severity.WARNING, f"The source has evicted {evicted:,} key(s)",
                           f"maxmemory {mib(maxmemory)}, policy {policy}, used "
                           f"{mib(ctx.source.used_memory)}.",
                           evidence={"evicted_keys": evicted, "maxmemory": maxmemory,
                                     "maxmemory_policy": policy})
