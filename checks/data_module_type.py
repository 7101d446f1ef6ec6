"""data.module-type: keys of module types the target cannot hold."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT, CORE_TYPES, extrapolate
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class DataModuleType(Check):
    id = "data.module-type"
    title = "Keys of module types the target cannot hold"
    why = ("Keys created by modules (JSON ReJSON-RL, time series TSDB-TYPE, Bloom MBbloom--, "
           "cuckoo MBbloomCF, count-min CMSk-TYPE, TopK-TYPE, t-digest TDIS-TYPE, Redis 8 "
           "vector sets `vectorset`, ...) exist only where a compatible module is loaded. "
           "Dragonfly's native replication skips them with only a log line: silent loss.")
    evidence = ("TYPE of every sampled key; counts per module type, extrapolated to the whole "
                "keyspace from INFO keyspace.")
    remedy = ("Load the named module on the target, or export these keys with the module's own "
              "commands and rebuild them on the target, or accept their loss after review.")
    source = (f"{COMPAT} 'Modules and their key types', 'Dragonfly as a replica of Redis'; "
              "per-target entries in checks/data/targets.yaml (module_types)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        sample = ctx.source.sample
        total = ctx.source.total_keys
        live_modules = {str(m.get("name", "")).lower() for m in ctx.target.modules}
        for type_name, count in sorted(sample.types.items()):
            if type_name in CORE_TYPES:
                continue
            entry = ctx.profile.module_type(type_name)
            status = entry.get("status", "none")
            evidence = {"type": type_name, "keys_in_sample": count,
                        "sampled": sample.sampled,
                        "estimated_keys": extrapolate(count, sample.sampled, total),
                        "target": ctx.target_name, "target_support": status,
                        "note": entry.get("note", "")}
            source = str(entry.get("source", self.source))
            if status == "supported":
                yield self.finding(Severity.INFO, f"{type_name} keys: supported by "
                                   f"{ctx.target_name}", str(entry.get("note", "")),
                                   remediation="", evidence=evidence, source=source)
            elif status == "needs-module":
                module = str(entry.get("module", ""))
                if ctx.target.live and module.lower() in live_modules:
                    yield self.finding(Severity.INFO, f"{type_name} keys: module {module} is "
                                       "loaded on the target", remediation="",
                                       evidence=evidence, source=source)
                else:
                    severity = Severity.BLOCKER if ctx.target.live else Severity.WARNING
                    yield self.finding(severity, f"{evidence['estimated_keys']} {type_name} "
                                       f"key(s) need module {module} on the target",
                                       str(entry.get("note", "")),
                                       remediation=f"Load {module} on the target before the "
                                                   "copy.", evidence=evidence, source=source)
            else:
                yield self.finding(Severity.BLOCKER, f"{evidence['estimated_keys']} {type_name} "
                                   f"key(s) that {ctx.target_name} cannot hold",
                                   str(entry.get("note", "")), evidence=evidence, source=source)
