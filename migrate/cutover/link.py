"""How the target follows the source, seen from the cut-over: offsets and promotion.

``NativeLink`` is the target replicating with REPLICAOF. Other sync modes provide the same
three things (the source's offset, the offset the target has applied, and promotion)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import redis


@dataclass(frozen=True)
class LinkState:
    up: bool
    source_offset: int
    applied_offset: int

    @property
    def lag_bytes(self) -> int:
        return max(self.source_offset - self.applied_offset, 0)


class ReplicationLink(Protocol):
    mode: str

    def state(self) -> LinkState: ...

    def source_offset(self) -> int: ...

    def applied_offset(self) -> int: ...

    def promote(self) -> None: ...

    def promote_commands(self) -> list[str]: ...


def _info(client: redis.Redis) -> dict:
    return client.info("replication")


class NativeLink:
    """The target is a replica of the source (REPLICAOF)."""

    mode = "native"

    def __init__(self, source: redis.Redis, target: redis.Redis):
        self.source = source
        self.target = target

    def source_offset(self) -> int:
        return int(_info(self.source)["master_repl_offset"])

    def applied_offset(self) -> int:
        info = _info(self.target)
        if info.get("role") not in ("slave", "replica"):
            return -1
        return int(info.get("slave_repl_offset", info.get("master_repl_offset", -1)))

    def state(self) -> LinkState:
        info = _info(self.target)
        up = info.get("role") in ("slave", "replica") and info.get("master_link_status") == "up"
        return LinkState(bool(up), self.source_offset(), self.applied_offset())

    def promote(self) -> None:
        self.target.execute_command("REPLICAOF", "NO", "ONE")

    def promote_commands(self) -> list[str]:
        return ["REPLICAOF NO ONE (on the target)"]
