"""keys.big: keys whose size makes a one-shot copy risky."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT, mib
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

BIG_BYTES = 1 * 2**20  # MEMORY USAGE of one key
BIG_ELEMENTS = 100_000  # elements of one collection
TOP = 10


class KeysBig(Check):
    id = "keys.big"
    title = "Big keys"
    why = ("A multi-MB value or a collection of hundreds of thousands of elements copied in "
           "one DUMP/RESTORE or one command blocks the target (and the source's reply) for "
           "its whole size, can exceed the target's limits (Dragonfly: strings up to 256 MB, "
           "65,536 arguments per command) and is where copies run out of memory.")
    evidence = (f"MEMORY USAGE of each sampled key; the length of sampled keys of at least "
                f"256 KiB. Big: >= {BIG_BYTES // 2**20} MiB or >= {BIG_ELEMENTS:,} elements. "
                "Only the sample is seen: raise --sample to cover the whole keyspace.")
    remedy = ("Let kvmigrate copy these keys in chunks (its copy does for collections), or "
              "split them in the application; copy them outside peak hours.")
    source = (f"{COMPAT} 'Commands Dragonfly lacks' (limits), 'What users of existing tools "
              "complain about' (big keys)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        sample = ctx.source.sample
        big = [k for k in sample.big_keys if k.memory >= BIG_BYTES or k.length >= BIG_ELEMENTS]
        if not big:
            return
        limits = ctx.profile.data.get("limits") or {}
        string_limit = int(limits.get("string_bytes", 0) or 0)
        too_big = [k for k in big if string_limit and k.type == "string"
                   and k.length > string_limit]
        top = [{"key": k.key, "db": k.db, "type": k.type, "memory": k.memory,
                "length": k.length} for k in big[:TOP]]
        scope = "the whole keyspace" if sample.complete else \
            f"a sample of {sample.sampled:,} keys"
        evidence = {"big_keys": len(big), "top": top, "scope": scope}
        if too_big:
            yield self.finding(Severity.BLOCKER, f"{len(too_big)} string(s) above "
                               f"{ctx.target_name}'s {mib(string_limit)} limit",
                               evidence={**evidence, "over_limit": [k.key for k in too_big]},
                               remediation="Split these values before the migration.")
        yield self.finding(Severity.WARNING, f"{len(big)} big key(s) in {scope}; largest "
                           f"{big[0].key} ({mib(big[0].memory)})", evidence=evidence)
