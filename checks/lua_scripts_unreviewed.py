"""lua.scripts-unreviewed: the source runs EVAL scripts that were not given to preflight."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

EVALS = ("eval", "evalsha", "eval_ro", "evalsha_ro")


class LuaScriptsUnreviewed(Check):
    id = "lua.scripts-unreviewed"
    title = "The source runs Lua scripts preflight has not seen"
    why = ("A server cannot list its script cache, so preflight sees EVAL/EVALSHA scripts "
           "only when they are given with --scripts. On Dragonfly a script that builds its "
           "keys inside fails at run time (see lua.undeclared-keys); elsewhere scripts can "
           "still call commands the target lacks.")
    evidence = "EVAL, EVALSHA, EVAL_RO and EVALSHA_RO calls in INFO commandstats of the source."
    remedy = ("Collect the scripts the applications send (their source trees, or the client "
              "libraries' bundled scripts) and run preflight again with --scripts PATH.")
    source = f"{COMPAT} 'Lua and functions on Dragonfly'; Redis docs: SCRIPT (no listing)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        calls = {c: ctx.source.commandstats.get(c, 0) for c in EVALS
                 if ctx.source.commandstats.get(c, 0)}
        if not calls or any(s.kind == "script" for s in ctx.scripts):
            return
        blocked = ctx.profile.value("undeclared_keys", "allowed") == "blocked"
        yield self.finding(Severity.WARNING if blocked else Severity.INFO,
                           f"{sum(calls.values()):,} script call(s) on the source; no "
                           "--scripts given", evidence={"calls": calls,
                                                        "target": ctx.target_name})
