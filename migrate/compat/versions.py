"""One rule for the target version, shared by every command that takes ``--to``.

Without ``--target`` (a live server whose version is read) or ``--target-version``, what a
command produces must work on every supported version of the target family: a converted
config, an RDB file or a plan made for the oldest supported version also works on the newer
ones (Valkey 8.0's directives are accepted by 8.1 and 9; its RDB 11 is loaded by both). So the
default is the oldest supported version, and the command says which versions its output is
valid for and how to get a version-specific one.
"""

from __future__ import annotations

# The versions kvmigrate's tests run against (the lab: docs/lab.md), oldest first.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "valkey": ("8.0.1", "8.1.1", "9.1.2"),
    "dragonfly": ("1.40",),
    "redis": ("7.0.15", "8.0.2", "8.0.6"),
}

_NAMES = {"valkey": "Valkey", "dragonfly": "Dragonfly", "redis": "Redis"}


def default_version(flavor: str) -> str:
    """The version assumed for ``--to FLAVOR`` without a target or ``--target-version``."""
    return SUPPORTED[flavor][0]


def families(flavor: str) -> list[str]:
    """The supported major.minor lines of ``flavor``: ``["8.0", "8.1", "9.1"]``."""
    return list(dict.fromkeys(".".join(v.split(".")[:2]) for v in SUPPORTED[flavor]))


def validity(flavor: str, requested: str | None) -> str:
    """Which versions a result is valid for, in words: shown by every command's output."""
    name = _NAMES.get(flavor, flavor)
    if requested:
        return f"for {name} {requested}"
    lines = families(flavor)
    if len(lines) == 1:
        return f"for {name} {lines[0]}"
    return (f"for every supported {name} ({', '.join(lines)}); "
            f"--target-version VERSION gives a version-specific one")
