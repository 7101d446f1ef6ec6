"""modules.unsupported: modules loaded on the source with no equivalent on the target."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

IGNORED = {"lua"}  # Valkey 9 lists its Lua engine as a module


class ModulesUnsupported(Check):
    id = "modules.unsupported"
    title = "Modules loaded on the source with no equivalent on the target"
    why = ("Clients call a module's commands (JSON.*, TS.*, BF.*, FT.*, V*): on a target "
           "without the module, or with a partial equivalent, those calls fail. Redis 8 loads "
           "its built-in modules (Debian's Redis 8 only `vectorset`) without any configuration, "
           "so they are easy to miss.")
    evidence = "MODULE LIST of the source (and of the target with --target)."
    remedy = ("Load the equivalent module on the target (valkey-json, valkey-bloom, "
              "valkey-search), or move the features that use the module elsewhere before the "
              "cut-over.")
    source = (f"{COMPAT} 'Modules and their key types'; per-target entries in "
              "checks/data/targets.yaml (modules)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        live = {str(m.get("name", "")).lower() for m in ctx.target.modules}
        for module in ctx.source.modules:
            name = str(module.get("name", ""))
            if name.lower() in IGNORED:
                continue
            entry = ctx.profile.module(name)
            evidence = {"module": name, "version": module.get("ver"), "target": ctx.target_name}
            if entry is None:
                yield self.finding(Severity.WARNING, f"Module {name}: unknown to the catalogue",
                                   f"kvmigrate has no data on {name} for {ctx.target_name}.",
                                   evidence=evidence)
                continue
            equivalent = entry.get("equivalent")
            evidence["equivalent"] = equivalent
            evidence["note"] = entry.get("note", "")
            source = str(entry.get("source", self.source))
            if equivalent is None:
                yield self.finding(Severity.WARNING, f"Module {name} has no equivalent on "
                                   f"{ctx.target_name}", str(entry.get("note", "")),
                                   evidence=evidence, source=source)
            elif equivalent != "built-in" and ctx.target.live and equivalent not in live:
                yield self.finding(Severity.WARNING, f"Module {name}: {equivalent} is not "
                                   "loaded on the target", str(entry.get("note", "")),
                                   remediation=f"Load {equivalent} on the target.",
                                   evidence=evidence, source=source)
            else:
                yield self.finding(Severity.INFO, f"Module {name}: {ctx.target_name} has "
                                   f"{equivalent}", str(entry.get("note", "")),
                                   remediation="Check that the commands the clients use exist "
                                               "in the equivalent.",
                                   evidence=evidence, source=source)
