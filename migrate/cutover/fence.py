"""Fencing the old primary: after promotion its writes must fail loudly, never succeed.

kvmigrate fences with ``min-replicas-to-write``: set far above the number of replicas a
server can have, every write command (also inside scripts and MULTI) is refused with
``NOREPLICAS Not enough good replicas to write``, while reads keep working. It is one CONFIG
SET, immediate, needs no ACL change, works on Redis 6+ and Valkey alike, and is undone
exactly by restoring the previous value (recorded for rollback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

FENCE_MODES = ("noreplicas", "none")
FENCE_VALUE = 1_000_000


@dataclass(frozen=True)
class FenceRecord:
    mode: str
    previous_min_replicas_to_write: str
    previous_min_replicas_max_lag: str

    def to_dict(self) -> dict[str, str]:
        return {"mode": self.mode,
                "previous_min_replicas_to_write": self.previous_min_replicas_to_write,
                "previous_min_replicas_max_lag": self.previous_min_replicas_max_lag}


def fence_commands() -> list[str]:
    return [f"CONFIG SET min-replicas-to-write {FENCE_VALUE}"]


def fence(client: redis.Redis,
          before: Callable[[FenceRecord], None] = lambda _r: None) -> FenceRecord:
    """Make every write on this server fail with NOREPLICAS; returns what to restore.
    ``before``: told what to restore before the server is fenced (a caller killed in
    between has it on record)."""
    current = client.config_get("min-replicas-*")
    record = FenceRecord("noreplicas", _text(current.get("min-replicas-to-write", "0")),
                         _text(current.get("min-replicas-max-lag", "10")))
    before(record)
    client.config_set("min-replicas-to-write", FENCE_VALUE)
    return record


def unfence(client: redis.Redis, record: FenceRecord) -> None:
    client.config_set("min-replicas-to-write", record.previous_min_replicas_to_write)
    client.config_set("min-replicas-max-lag", record.previous_min_replicas_max_lag)


def is_fenced(client: redis.Redis) -> bool:
    value = client.config_get("min-replicas-to-write").get("min-replicas-to-write", "0")
    return int(_text(value)) >= FENCE_VALUE


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
