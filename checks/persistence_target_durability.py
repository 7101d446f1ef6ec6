"""persistence.target-durability: the source persists, the live target does not."""

from __future__ import annotations

from collections.abc import Iterator

from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class PersistenceTargetDurability(Check):
    id = "persistence.target-durability"
    title = "The target would persist less than the source"
    why = ("If the source writes snapshots or an AOF and the target writes neither, a restart "
           "of the target after the cut-over loses every key: the application's durability "
           "silently drops.")
    evidence = ("CONFIG GET save and appendonly of the source and of a live target "
                "(--target); Dragonfly's snapshots are snapshot_cron / dbfilename.")
    remedy = ("Configure persistence on the target (save or snapshot_cron, appendonly on "
              "Valkey) before the cut-over; `kvmigrate convert-config` maps it.")
    source = "redis.conf documentation (save, appendonly); docs/compatibility.md"

    def run(self, ctx: Context) -> Iterator[Finding]:
        src, tgt = ctx.source.config, ctx.target.config
        source_persists = bool(src.get("save", "").strip()) or src.get("appendonly") == "yes"
        if not ctx.target.live or not source_persists or not tgt:
            return
        target_persists = bool(tgt.get("save", "").strip()) or tgt.get("appendonly") == "yes" \
            or bool(tgt.get("snapshot_cron", "").strip())
        if not target_persists:
            yield self.finding(Severity.WARNING, "The source persists its data, the target "
                               "does not", evidence={
                                   "source_save": src.get("save", ""),
                                   "source_appendonly": src.get("appendonly", ""),
                                   "target_save": tgt.get("save", ""),
                                   "target_appendonly": tgt.get("appendonly", "")})
