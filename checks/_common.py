"""Small helpers shared by the checks (not a check: the registry skips ``_`` modules)."""

from __future__ import annotations

CORE_TYPES = frozenset({"string", "list", "set", "zset", "hash", "stream", "none"})
COMPAT = "docs/compatibility.md"


def mib(value: int) -> str:
    return f"{value / 2**20:,.1f} MiB"


def extrapolate(count: int, sampled: int, total: int) -> int:
    """Estimated keys in the whole keyspace from a count in the sample."""
    if sampled <= 0 or total <= sampled:
        return count
    return round(count * total / sampled)
