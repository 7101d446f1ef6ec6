"""lua.unsupported-command: commands called inside scripts that the target lacks."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class LuaUnsupportedCommand(Check):
    id = "lua.unsupported-command"
    title = "Scripts call commands the target lacks"
    why = ("A script that calls a command the target does not have fails at run time with an "
           "unknown-command error, possibly half-way through its writes.")
    evidence = ("Literal command names of every redis.call/pcall in the analysed scripts and "
                "function libraries, against the target's COMMAND LIST (with --target) or the "
                "catalogue's missing/partial commands for the target version.")
    remedy = "Rewrite the script without these commands, or choose a target that has them."
    source = f"{COMPAT} 'Commands Dragonfly lacks'; checks/data/targets.yaml (missing_commands)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        for script in ctx.scripts:
            for command in sorted(script.commands):
                how, note, source = ctx.command_gap(command)
                if not how:
                    continue
                severity = Severity.BLOCKER if how == "missing" else Severity.WARNING
                yield self.finding(severity, f"{script.name}: {command.upper()} is {how} on "
                                   f"{ctx.target_name}", note,
                                   evidence={"script": script.name, "command": command,
                                             "calls_in_code": script.commands[command],
                                             "status": how},
                                   source=source or self.source)
