"""data.field-ttl: hashes with per-field TTLs (Redis 7.4+ HEXPIRE)."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class DataFieldTtl(Check):
    id = "data.field-ttl"
    title = "Hashes with per-field TTLs"
    why = ("Hash fields with their own TTL (HEXPIRE, Redis 7.4+) exist only on targets with "
           "the field-TTL commands. Valkey 8.x has none: the TTLs (or the hashes) would be "
           "lost. Valkey 9 has them all. Dragonfly registers HSETEX/HEXPIRE but not "
           "HPEXPIRE/HPEXPIREAT/HPERSIST/HPTTL, so TTLs are rounded up to seconds; native "
           "replication to Dragonfly fails on them (RDB type 25) or drops them silently.")
    evidence = ("INFO keyspace `subexpiry` (Redis 7.4+), and the key sample: hashes encoded "
                "`listpackex`, and HPTTL of a few random fields of larger hashes.")
    remedy = ("Valkey 8.x: choose Valkey 9+, or accept losing the field TTLs (persist them "
              "first with HPERSIST) after review. Valkey 9 / Dragonfly: use kvmigrate's logical "
              "copy, which re-applies field TTLs with the commands named in the finding.")
    source = f"{COMPAT} 'Hash field TTLs'; seen here: Valkey 9.1.2 and Dragonfly replicas"

    def run(self, ctx: Context) -> Iterator[Finding]:
        src = ctx.source
        counted = sum(db.get("subexpiry", 0) for db in src.keyspace.values())
        seen = list(src.sample.field_ttl_keys)
        if not counted and not seen:
            return
        entry = ctx.profile.entry("field_ttl")
        support = entry.get("value", "none")
        live_missing = []
        if ctx.target.commands is not None:
            live_missing = [c for c in ("hpexpireat", "hexpire") if c not in ctx.target.commands]
            if len(live_missing) == 2:
                support = "none"
            elif "hexpire" not in live_missing and support == "none":
                support = "full"
        evidence = {"hashes_with_field_ttls": counted or len(seen), "examples": seen[:10],
                    "target": ctx.target_name, "target_support": support}
        if support == "none":
            yield self.finding(
                Severity.BLOCKER, f"{evidence['hashes_with_field_ttls']} hash(es) with per-field "
                f"TTLs; {ctx.target_name} has no field TTLs",
                f"{ctx.target_name} has no HEXPIRE/HPEXPIREAT: the field TTLs cannot be kept.",
                remediation="Choose Valkey 9 or newer as the target, or remove the field TTLs "
                            "(HPERSIST) after confirming the application does not need them.",
                evidence=evidence, source=str(entry.get("source", self.source)))
            return
        commands = entry.get("commands", [])
        evidence["copy_commands"] = commands
        detail = (f"The copy re-creates each field TTL with {' + '.join(commands)}.")
        if entry.get("missing"):
            evidence["target_lacks"] = entry["missing"]
            detail += (f" {ctx.target_name} lacks {', '.join(entry['missing'])}: TTLs are "
                       "rounded up to whole seconds and clients using those commands break.")
        yield self.finding(Severity.WARNING, f"{evidence['hashes_with_field_ttls']} hash(es) "
                           "with per-field TTLs need a field-aware copy", detail,
                           evidence=evidence, source=str(entry.get("source", self.source)))
