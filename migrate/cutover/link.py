"""How the target follows the source, seen from the cut-over: offsets and promotion.

``NativeLink`` is the target replicating with REPLICAOF; ``ReplicaModeLink`` a running
``sync --mode replica --follow``. Each provides the same three things: the source's offset,
the offset the target has applied, and promotion."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
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


class ReplicaModeLink:
    """A ``sync --mode replica --follow`` run: kvmigrate itself applies the source's stream.

    The applied offset is the one the run records after every batch the target has answered
    (``applied.json`` in its state folder); promotion is stopping the run (SIGTERM to the pid
    in its pidfile), as the target is already a primary. The run is not waited for: with the
    source paused and fenced, nothing new can reach it.
    """

    mode = "replica"

    def __init__(self, source: redis.Redis, state_root: Path):
        self.source = source
        self.root = state_root

    def _pid(self) -> int | None:
        try:
            text = (self.root / "kvmigrate.pid").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def running(self) -> bool:
        pid = self._pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def source_offset(self) -> int:
        return int(_info(self.source)["master_repl_offset"])

    def applied_offset(self) -> int:
        try:
            return int(json.loads((self.root / "applied.json").read_text())["offset"])
        except (OSError, ValueError, KeyError):
            return -1

    def state(self) -> LinkState:
        return LinkState(self.running(), self.source_offset(), self.applied_offset())

    def promote(self) -> None:
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def promote_commands(self) -> list[str]:
        return [f"stop the replica-mode sync (SIGTERM to pid {self._pid()}); the target is "
                "already a primary"]
