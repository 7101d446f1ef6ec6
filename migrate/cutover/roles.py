"""The two servers of a rollback, named by what they are (shared by every rollback path)."""

from __future__ import annotations

from dataclasses import dataclass

from migrate.serverinfo import ServerIdentity

FLAVOR_NAMES = {"redis": "Redis", "valkey": "Valkey", "dragonfly": "Dragonfly"}


@dataclass(frozen=True)
class Roles:
    """The two servers of a rollback, named by what they are. (The cut-over back runs from
    the new primary to the old one: "source" and "target" would name them the opposite way
    round from the user's ``--source`` and ``--target``.)"""

    old: str  # "the old Redis": the user's --source, to become the primary again
    new: str  # "the Valkey primary": the user's --target, the primary since the cut-over

    @classmethod
    def of(cls, old: ServerIdentity, new: ServerIdentity) -> Roles:
        old_name = FLAVOR_NAMES.get(old.flavor, old.flavor)
        new_name = FLAVOR_NAMES.get(new.flavor, new.flavor)
        return cls(f"the old {old_name}", f"the new {new_name} primary"
                   if new_name == old_name else f"the {new_name} primary")

    def cutover(self) -> tuple[str, str]:
        """The roles of the cut-over back, whose source is the new primary."""
        return self.new, self.old
