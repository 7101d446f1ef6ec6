"""Test helper: make an exact copy of a lab server with the servers' own replication."""

from __future__ import annotations

import time

from migrate.lab.server import ServerProcess


def wait_in_sync(source: ServerProcess, target: ServerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tinfo = target.client().info("replication")
        sinfo = source.client().info("replication")
        if tinfo.get("master_link_status") == "up" and \
                tinfo.get("slave_repl_offset") == sinfo.get("master_repl_offset"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{target.spec} did not catch up with {source.spec}: "
                         f"{target.log_tail()}")


def replicate(source: ServerProcess, target: ServerProcess, *, detach: bool = True) -> None:
    """REPLICAOF until in sync; ``detach`` then promotes the target (REPLICAOF NO ONE)."""
    target.client().execute_command("REPLICAOF", "127.0.0.1", source.port)
    wait_in_sync(source, target)
    if detach:
        target.client().execute_command("REPLICAOF", "NO", "ONE")
