"""lua.functions: Redis 7 functions (FUNCTION LOAD / FCALL) and whether the target has them."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class LuaFunctions(Check):
    id = "lua.functions"
    title = "Redis 7 functions on the source"
    why = ("Function libraries live outside the keyspace: a key copy does not carry them. "
           "Dragonfly has no FUNCTION/FCALL at all (FUNCTION FLUSH is a no-op, and functions in "
           "an RDB are not loaded), so clients calling FCALL break.")
    evidence = ("FUNCTION LIST WITHCODE of the source (library names, functions); FCALL and "
                "FCALL_RO calls in INFO commandstats.")
    remedy = ("Dragonfly: rewrite each function as an EVAL/EVALSHA script (keys in KEYS) and "
              "change the clients. Valkey: copy the libraries with FUNCTION DUMP on the source "
              "and FUNCTION RESTORE on the target (kvmigrate copy does this).")
    source = f"{COMPAT} 'Lua and functions on Dragonfly'; checks/data/targets.yaml (functions)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        libraries = ctx.source.functions
        calls = sum(ctx.source.commandstats.get(c, 0) for c in ("fcall", "fcall_ro"))
        if not libraries and not calls:
            return
        entry = ctx.profile.entry("functions")
        names = [f"{lib.name}.{fn}" for lib in libraries for fn in lib.functions]
        evidence = {"libraries": [lib.name for lib in libraries], "functions": names,
                    "fcall_calls": calls, "target": ctx.target_name}
        source = str(entry.get("source", self.source))
        if not entry.get("value", True):
            yield self.finding(Severity.BLOCKER, f"{len(libraries)} function librar(ies), "
                               f"{len(names)} function(s); {ctx.target_name} has no "
                               "FUNCTION/FCALL", evidence=evidence, source=source)
        else:
            yield self.finding(Severity.WARNING, f"{len(libraries)} function librar(ies) must "
                               "be copied besides the keys",
                               "Function libraries are not keys: copy them explicitly.",
                               remediation="FUNCTION DUMP on the source, FUNCTION RESTORE on "
                                           "the target, before clients switch.",
                               evidence=evidence, source=source)
