"""A replica target over its maxmemory: said, not left for the cut-over to find.

In native and proxy mode the target is a replica, and a replica ignores ``maxmemory``
(``replica-ignore-maxmemory yes``, the default of Redis and Valkey): the copy "succeeds" on a
target that holds more than its limit. Promoted at the cut-over, such a target refuses every
write (noeviction: OOM errors) or evicts copied keys (any other policy). Preflight's
``memory.capacity`` check says so before the sync; :func:`check_replica_memory` checks again
once the target holds the data (after catch-up, and every second while following), and the
run stops with one line (exit 4), the target left a replica.
"""

from __future__ import annotations

from typing import Any

from migrate.errors import KvmError


def _mib(value: int) -> str:
    return f"{value / 2**20:,.1f} MiB"


class TargetOverMaxmemory(KvmError):
    """The replica target uses more memory than its maxmemory."""


def over_maxmemory(memory: dict[str, Any]) -> tuple[int, int] | None:
    """(used_memory, maxmemory) from INFO memory when a limit is set and passed."""
    try:
        used, limit = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
    except (TypeError, ValueError):
        return None
    return (used, limit) if limit and used > limit else None


def check_replica_memory(where: str, memory: dict[str, Any], *, resumable: bool = True) -> None:
    """Stop the run when the target (``where``) uses more than its maxmemory."""
    over = over_maxmemory(memory)
    if over is None:
        return
    used, limit = over
    policy = memory.get("maxmemory_policy", "noeviction")
    then = "run again with --resume" if resumable else "run the sync again"
    raise TargetOverMaxmemory(
        f"the target {where} holds the copy but uses {_mib(used)}, above its maxmemory "
        f"{_mib(limit)} (ignored while it is a replica): promoted, it would "
        + ("refuse writes (noeviction)" if policy == "noeviction" else
           f"evict keys ({policy})") + "; the sync stopped",
        f"raise maxmemory on the target (CONFIG SET maxmemory), then {then}; the target "
        "is left a replica")
