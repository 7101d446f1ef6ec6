"""commands.unsupported: commands the source has served that the target lacks."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

# Administrative commands: a missing one breaks tooling, not the application's data path.
ADMIN = {"object", "memory", "module", "config", "client", "latency", "cluster", "script",
         "failover", "bgrewriteaof", "readonly", "readwrite", "reset", "slowlog", "debug",
         "acl", "command", "function", "migrate", "swapdb", "waitaof"}
# What kvmigrate preflight itself sends to a source: never blamed on the application.
OWN = {"object|encoding", "memory|usage", "module|list", "config|get", "acl|list",
       "function|list", "client|list", "cluster|info", "cluster|nodes", "command|list",
       "command|info", "pubsub|numpat", "pubsub|channels", "hpttl", "hrandfield"}


class CommandsUnsupported(Check):
    id = "commands.unsupported"
    title = "Commands the source served that the target lacks"
    why = ("Every command the application sends must exist on the target; INFO commandstats "
           "shows what the source actually served since its last restart (or CONFIG "
           "RESETSTAT). A missing data command breaks the application; a missing admin command "
           "breaks tooling and monitoring; a partial one may behave differently.")
    evidence = ("INFO commandstats of the source (calls per command and subcommand), against "
                "the target's COMMAND LIST (with --target) and the catalogue's missing and "
                "partial commands for the target version. Commands kvmigrate preflight itself "
                "sends are left out.")
    remedy = ("Change the clients that send these commands, or choose a target that has "
              "them. Call counts show which matter.")
    source = (f"{COMPAT} 'Commands Dragonfly lacks'; seen here: COMMAND LIST of Redis 8.0.6 vs "
              "Valkey 8.0.1/8.1.1/9.1.2; checks/data/targets.yaml")

    def run(self, ctx: Context) -> Iterator[Finding]:
        gaps: dict[str, list[dict[str, object]]] = {"missing": [], "partial": []}
        sources: set[str] = set()
        admin_only = True
        for command, calls in sorted(ctx.source.commandstats.items()):
            if calls <= 0 or command in OWN:
                continue
            how, note, source = ctx.command_gap(command)
            if not how:
                continue
            gaps[how].append({"command": command, "calls": calls, "note": note})
            sources.add(source)
            if how == "missing" and command.split("|")[0] not in ADMIN:
                admin_only = False
        missing, partial = gaps["missing"], gaps["partial"]
        if missing:
            severity = Severity.WARNING if admin_only else Severity.BLOCKER
            names = ", ".join(str(g["command"]) for g in missing[:8])
            yield self.finding(severity, f"{len(missing)} command(s) the source served are "
                               f"missing on {ctx.target_name}: {names}",
                               evidence={"commands": missing, "target": ctx.target_name},
                               source="; ".join(sorted(sources)) or self.source)
        if partial:
            names = ", ".join(str(g["command"]) for g in partial[:8])
            yield self.finding(Severity.WARNING, f"{len(partial)} command(s) the source served "
                               f"are only partly supported on {ctx.target_name}: {names}",
                               evidence={"commands": partial, "target": ctx.target_name},
                               source="; ".join(sorted(sources)) or self.source)
