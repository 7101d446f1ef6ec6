"""lua.undeclared-keys: scripts and functions that touch keys not passed in KEYS."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

DF_REMEDY = ("Pass every key in KEYS; or, for a script you cannot change, allow it on "
             "Dragonfly: first line `--!df flags=allow-undeclared-keys` (add "
             "`,disable-atomicity` if it may run unlocked), or `SCRIPT FLAGS <sha> "
             "allow-undeclared-keys`, or the server flags `--lua_undeclared_keys_shas=<sha>,...` "
             "or `--default_lua_flags=allow-undeclared-keys` (the script then blocks all other "
             "work while it runs).")


class LuaUndeclaredKeys(Check):
    id = "lua.undeclared-keys"
    title = "Lua code touches keys not passed in KEYS"
    why = ("Dragonfly lets a script touch only the keys passed in KEYS and fails the call with "
           "\"script tried accessing undeclared key\" otherwise; BullMQ, Sidekiq and "
           "sidekiq-unique-jobs build keys inside their scripts. In a cluster, undeclared keys "
           "also escape slot routing (CROSSSLOT or wrong node).")
    evidence = ("Each script given with --scripts and each function library from FUNCTION LIST "
                "WITHCODE, parsed with a real Lua parser (luaparser): every redis.call/pcall key "
                "argument is traced back to KEYS, ARGV, a concatenation, an earlier call's reply, "
                "a literal, through locals, tables, helper functions and loops.")
    remedy = DF_REMEDY
    source = (f"{COMPAT} 'Lua and functions on Dragonfly'; Dragonfly docs, Scripting with Lua "
              "(dragonflydb.io/docs/managing-dragonfly/scripting)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        mode = ctx.profile.value("undeclared_keys", "allowed")
        cluster = ctx.target.cluster_enabled or ctx.source.cluster.enabled
        # A live Dragonfly shows --lua_undeclared_keys_shas in CONFIG GET, but not
        # --default_lua_flags (seen on 1.40.1: CONFIG GET default_lua_flags answers nothing)
        allowed_shas = {s.strip().lower() for s in
                        ctx.target.config.get("lua_undeclared_keys_shas", "").split(",")
                        if s.strip()} if ctx.target.live else set()
        for script in ctx.scripts:
            if script.parse_error:
                yield self.finding(Severity.WARNING, f"{script.name}: cannot be analysed",
                                   f"The Lua parser failed: {script.parse_error}",
                                   remediation="Review this script by hand.",
                                   evidence={"script": script.name})
                continue
            if not script.undeclared:
                continue
            evidence = {"script": script.name, "kind": script.kind,
                        "accesses": [a.describe() for a in script.undeclared[:20]],
                        "count": len(script.undeclared), "flags": script.flags,
                        "sha1": script.sha1}
            title = f"{script.name}: {len(script.undeclared)} undeclared key access(es)"
            if mode == "blocked" and script.kind == "script" and script.sha1 in allowed_shas:
                yield self.finding(Severity.INFO, title + " (allowed on the target by "
                                   "lua_undeclared_keys_shas)",
                                   f"{ctx.target_name} lists its SHA1 {script.sha1} in "
                                   "lua_undeclared_keys_shas (CONFIG GET): the script runs, "
                                   "but blocks all other work while it runs.",
                                   remediation="", evidence=evidence)
            elif mode == "blocked" and script.allows_undeclared:
                yield self.finding(Severity.INFO, title + " (allowed by its --!df flag)",
                                   "The script runs, but blocks all other work while it runs.",
                                   remediation="", evidence=evidence)
            elif mode == "blocked":
                unseen = (" A live Dragonfly does not show --default_lua_flags in CONFIG GET: "
                          "if it was started with --default_lua_flags=allow-undeclared-keys, "
                          "the script runs.") if ctx.target.live else ""
                yield self.finding(Severity.BLOCKER, title,
                                   f"{ctx.target_name} rejects these calls at run time "
                                   "(\"script tried accessing undeclared key\")." + unseen,
                                   evidence=evidence)
            elif cluster:
                yield self.finding(Severity.WARNING, title,
                                   "In a cluster, keys not in KEYS are not routed by slot.",
                                   remediation="Pass every key in KEYS, with a shared hash tag.",
                                   evidence=evidence)
            else:
                yield self.finding(Severity.INFO, title, f"{ctx.target_name} allows this.",
                                   remediation="", evidence=evidence)
