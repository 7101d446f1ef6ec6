"""What a check sees: source facts, target facts, the target's catalogue profile, scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migrate.inspect.facts import SourceFacts, TargetFacts
from migrate.preflight.profile import Profile
from migrate.serverinfo import ServerIdentity, parse_version

if TYPE_CHECKING:  # luaparser loads only when scripts are analysed
    from migrate.inspect.lua import ScriptAnalysis


@dataclass
class Context:
    source: SourceFacts
    target: TargetFacts
    profile: Profile
    scripts: list[ScriptAnalysis] = field(default_factory=list)

    @property
    def source_identity(self) -> ServerIdentity:
        return ServerIdentity(self.source.flavor, parse_version(self.source.version),
                              self.source.version)

    @property
    def target_identity(self) -> ServerIdentity:
        return self.profile.identity

    @property
    def target_name(self) -> str:
        return f"{self.target.flavor} {self.target.version}"

    def command_gap(self, command: str) -> tuple[str, str, str]:
        """("missing" | "partial" | "", note, source) for a command as INFO commandstats
        spells it (``hset``, ``object|encoding``).

        A live target answers from its own COMMAND LIST (the server is right); subcommands and
        targets given only by version come from the catalogue.
        """
        base = command.lower().split("|")[0]
        if self.target.commands is not None:
            if base not in set(self.target.commands):
                return "missing", "not in the target's COMMAND LIST", \
                    f"COMMAND LIST of the live target {self.target.endpoint}"
            if "|" not in command:
                status = self.profile.command_status(command)
                if status is None or status[0] == "missing":
                    return "", "", ""
                return status[0], str(status[1].get("note", "")), \
                    str(status[1].get("source", ""))
        status = self.profile.command_status(command)
        if status is None:
            return "", "", ""
        how, entry = status
        return how, str(entry.get("note", "")), str(entry.get("source", ""))
