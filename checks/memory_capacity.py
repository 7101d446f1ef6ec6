"""memory.capacity: does the dataset fit the target, and could the target evict it?"""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT, mib
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

HEADROOM = 1.25  # the dataset plus 25 % for fragmentation, replication buffers and growth


class MemoryCapacity(Check):
    id = "memory.capacity"
    title = "The dataset against the target's memory"
    why = ("A target whose maxmemory is below the dataset either refuses writes half-way "
           "through the copy (noeviction: OOM errors) or evicts keys that were just copied "
           "(any other policy): a silent key-count mismatch. Dragonfly also refuses snapshots "
           "above 1.05 x maxmemory.")
    evidence = ("INFO memory of the source (used_memory, used_memory_dataset); CONFIG GET "
                "maxmemory and maxmemory-policy of a live target (--target).")
    remedy = (f"Give the target maxmemory of at least {HEADROOM:.2f} x the source's used "
              "memory, and maxmemory-policy noeviction during the migration.")
    source = (f"{COMPAT} 'What users of existing tools complain about' (evicting targets), "
              "'What each target can load' (Dragonfly 1.05 x maxmemory)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        used = ctx.source.used_memory
        needed = int(used * HEADROOM)
        evidence = {"source_used_memory": used, "needed_with_headroom": needed}
        if not ctx.target.live:
            yield self.finding(Severity.INFO, f"Plan at least {mib(needed)} of maxmemory on "
                               "the target", f"The source uses {mib(used)}; give --target to "
                               "check a live target.", evidence=evidence)
            return
        maxmemory = int(ctx.target.config.get("maxmemory", "0") or 0)
        policy = ctx.target.config.get("maxmemory-policy", "noeviction")
        target_used = int(ctx.target.section("memory").get("used_memory", 0) or 0)
        evidence.update({"target_maxmemory": maxmemory, "target_policy": policy,
                         "target_used_memory": target_used})
        if maxmemory and used + target_used > maxmemory:
            yield self.finding(Severity.BLOCKER, f"The dataset ({mib(used)}) does not fit the "
                               f"target's maxmemory ({mib(maxmemory)})",
                               "The copy would hit OOM errors or evict keys.",
                               evidence=evidence)
        elif maxmemory and needed + target_used > maxmemory:
            yield self.finding(Severity.WARNING, f"Less than {int((HEADROOM - 1) * 100)} % "
                               f"headroom: {mib(used)} into {mib(maxmemory)}",
                               evidence=evidence)
        elif not maxmemory:
            yield self.finding(Severity.INFO, "The target has no maxmemory limit",
                               f"The host must hold at least {mib(needed)}.",
                               remediation="", evidence=evidence)
        if policy != "noeviction":
            yield self.finding(Severity.WARNING, f"The target's eviction policy {policy} "
                               "could drop migrated keys",
                               remediation="Set maxmemory-policy noeviction on the target until "
                                           "verification passed.", evidence=evidence)
