"""cluster.shard-memory: the share of the data each target primary will hold, against its
maxmemory."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT, mib
from migrate.inspect.facts import ShardFacts
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context
from migrate.protocol.cluster.slots import SLOTS
from migrate.protocol.cluster.topology import SlotRange

HEADROOM = 1.25  # as memory.capacity: the data plus 25 % for fragmentation and buffers


def parse_ranges(ranges: list[str]) -> list[SlotRange]:
    out = []
    for text in ranges:
        start, _, end = text.partition("-")
        out.append(SlotRange(int(start), int(end or start)))
    return out


def slot_memory(shards: list[ShardFacts], total: int) -> list[tuple[list[SlotRange], float]]:
    """(slot ranges, bytes per slot) per source shard; a standalone source (no shards) is
    spread evenly over all 16,384 slots."""
    if not shards:
        return [([SlotRange(0, SLOTS - 1)], total / SLOTS)]
    out = []
    for shard in shards:
        ranges = parse_ranges(shard.slots)
        count = sum(len(r) for r in ranges)
        if count:
            out.append((ranges, shard.data_memory / count))
    return out


def overlap(a: list[SlotRange], b: list[SlotRange]) -> int:
    return sum(max(0, min(x.end, y.end) - max(x.start, y.start) + 1) for x in a for y in b)


class ClusterShardMemory(Check):
    id = "cluster.shard-memory"
    title = "Per-shard memory against the target's primaries"
    why = ("In a cluster each primary holds only its slots' keys, and its maxmemory applies "
           "to them alone: a target whose total is ample still refuses writes (noeviction: "
           "OOM) or evicts on the primary whose slots hold more than its maxmemory, when the "
           "source's data is spread unevenly or the target has fewer or differently sized "
           "shards. (A single-node target gets the sum of the source's shards: memory.capacity "
           "compares it, from facts summed over every primary.)")
    evidence = ("used_memory and used_memory_dataset of every source primary (INFO memory) "
                "and its slot ranges; for a live cluster target, each primary's maxmemory "
                "(CONFIG GET), used_memory and slot ranges. A target primary's share = sum "
                "over source shards of (slots it takes from that shard x that shard's dataset "
                "memory per slot), added to what the target primary already uses: an "
                "approximation that assumes memory is spread evenly over a shard's slots "
                "(evenly over all slots for a standalone source).")
    remedy = (f"Give each target primary maxmemory of at least {HEADROOM:.2f} x its share, or "
              "add primaries / move slots (CLUSTER SETSLOT, valkey-cli --cluster rebalance) so "
              "that no primary takes more than it can hold; keep maxmemory-policy noeviction "
              "during the migration.")
    source = (f"{COMPAT} 'Cluster' (same 16,384 slots), 'What users of existing tools complain "
              "about' (evicting targets); Valkey docs, Cluster specification (key distribution)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        source = ctx.source.cluster
        target = ctx.target.cluster
        if ctx.target.live and ctx.target.cluster_enabled and target.shards:
            yield from self._against_target(ctx)
        elif source.enabled and source.shards and not ctx.target.live:
            largest = max(source.shards, key=lambda s: s.used_memory)
            yield self.finding(Severity.INFO, f"Largest source shard: {mib(largest.used_memory)} "
                               f"({largest.primary}, {largest.slot_count} slots)",
                               f"{len(source.shards)} shards, {mib(ctx.source.used_memory)} in "
                               "all; give --target to check each target primary's maxmemory.",
                               remediation="", evidence={"shards": self._shards(source.shards)})

    @staticmethod
    def _shards(shards: list[ShardFacts]) -> list[dict[str, object]]:
        return [{"primary": s.primary, "slots": s.slot_count, "used_memory": s.used_memory,
                 "dataset_memory": s.data_memory, "maxmemory": s.maxmemory} for s in shards]

    def _against_target(self, ctx: Context) -> Iterator[Finding]:
        per_slot = slot_memory(ctx.source.cluster.shards if ctx.source.cluster.enabled else [],
                               ctx.source.dataset_memory)
        shares = []
        for shard in ctx.target.cluster.shards:
            mine = parse_ranges(shard.slots)
            share = int(sum(overlap(ranges, mine) * rate for ranges, rate in per_slot))
            shares.append((shard, share))
        evidence = {"source_shards": self._shards(ctx.source.cluster.shards),
                    "target_shares": [{"primary": s.primary, "slots": s.slot_count,
                                       "share": share, "used_memory": s.used_memory,
                                       "maxmemory": s.maxmemory} for s, share in shares],
                    "approximation": "memory spread evenly over each source shard's slots"}
        over = [(s, share) for s, share in shares
                if s.maxmemory and share + s.used_memory > s.maxmemory]
        tight = [(s, share) for s, share in shares if s.maxmemory and (s, share) not in over
                 and int(share * HEADROOM) + s.used_memory > s.maxmemory]
        if over:
            s, share = max(over, key=lambda p: p[1] - p[0].maxmemory)
            yield self.finding(Severity.BLOCKER, f"{len(over)} target primary(ies) cannot hold "
                               f"their share: {s.primary} takes about {mib(share)} into "
                               f"maxmemory {mib(s.maxmemory)}",
                               "The copy would hit OOM errors or evict keys on these primaries "
                               "even if the target's total is enough.", evidence=evidence)
        if tight:
            s, share = tight[0]
            yield self.finding(Severity.WARNING, f"Less than {int((HEADROOM - 1) * 100)} % "
                               f"headroom on {len(tight)} target primary(ies): {s.primary} "
                               f"takes about {mib(share)} into {mib(s.maxmemory)}",
                               evidence=evidence)
        if not over and not tight:
            largest, share = max(shares, key=lambda p: p[1])
            limited = all(s.maxmemory for s, _ in shares)
            yield self.finding(Severity.INFO, f"Largest share per target primary: about "
                               f"{mib(share)} ({largest.primary})",
                               "Every target primary's maxmemory holds its share."
                               if limited else "Some target primaries have no maxmemory limit: "
                               "their hosts must hold their share.",
                               remediation="", evidence=evidence)
