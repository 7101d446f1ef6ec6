"""What a target (flavor, version) supports, read from ``checks/data/targets.yaml``.

Each property is a list of entries; an entry applies to target versions in
``[from, until)``. The last entry that applies wins. Every entry carries its ``source``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from migrate.compat.versions import default_version
from migrate.errors import UsageError
from migrate.serverinfo import ServerIdentity, parse_version

FLAVORS = ("valkey", "dragonfly")


@cache
def load_targets() -> dict[str, Any]:
    text = resources.files("checks").joinpath("data/targets.yaml").read_text()
    return yaml.safe_load(text)


def known_versions(flavor: str) -> list[str]:
    return list(load_targets()[flavor]["versions"])


def applies(entry: dict[str, Any], version: tuple[int, ...]) -> bool:
    low = entry.get("from")
    high = entry.get("until")
    if low is not None and version < parse_version(str(low)):
        return False
    return not (high is not None and version >= parse_version(str(high)))


@dataclass(frozen=True)
class Profile:
    flavor: str
    version: str

    @property
    def identity(self) -> ServerIdentity:
        return ServerIdentity(self.flavor, parse_version(self.version), self.version)

    @property
    def data(self) -> dict[str, Any]:
        return load_targets()[self.flavor]

    def entry(self, prop: str) -> dict[str, Any]:
        """The entry of ``prop`` for this version (``{}`` when none applies)."""
        found: dict[str, Any] = {}
        for entry in self.data.get(prop) or []:
            if applies(entry, self.identity.version):
                found = entry
        return found

    def value(self, prop: str, default: Any = None) -> Any:
        return self.entry(prop).get("value", default)

    def entries(self, prop: str) -> list[dict[str, Any]]:
        """Every entry of a list property that applies to this version."""
        return [e for e in self.data.get(prop) or [] if applies(e, self.identity.version)]

    def command_status(self, command: str) -> tuple[str, dict[str, Any]] | None:
        """("missing" | "partial", entry) for a command name (``hset``, ``object|encoding``)."""
        name = command.lower()
        for status, prop in (("missing", "missing_commands"), ("partial", "partial_commands")):
            for entry in self.entries(prop):
                for pattern in entry.get("commands", []):
                    pattern = str(pattern).lower()
                    if fnmatch.fnmatchcase(name, pattern) or \
                            (name.split("|")[0] == pattern and "|" not in pattern):
                        return status, entry
        return None

    def module_type(self, type_name: str) -> dict[str, Any]:
        types = self.data.get("module_types") or {}
        return types.get(type_name) or {
            "status": "none", "note": f"{self.flavor} knows no module type {type_name}",
            "source": "checks/data/targets.yaml: not listed for this target"}

    def module(self, name: str) -> dict[str, Any] | None:
        return (self.data.get("modules") or {}).get(name)


def profile_for(flavor: str, version: str | None) -> Profile:
    """The catalogue's profile of ``flavor`` at ``version`` (default: the oldest supported
    version, so that what preflight finds holds on every supported version)."""
    if flavor not in FLAVORS:
        raise UsageError(f"unknown target {flavor!r}", "use --to valkey or --to dragonfly")
    chosen = version or default_version(flavor)
    try:
        parse_version(chosen)
    except Exception:
        raise UsageError(f"malformed --target-version {chosen!r}",
                         f"known {flavor} versions: {', '.join(known_versions(flavor))}") \
            from None
    return Profile(flavor, chosen)
