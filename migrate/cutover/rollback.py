"""Rollback after a cut-over: bring the old primary back in sync with the writes the new
primary took, then the same guarded cut-over back.

Native reverse replication (the old primary becomes a replica of the new one) only where the
old primary can load the new one's RDB version (Redis 7.0 loads RDB 10 at most, so Valkey 8.0,
which writes 11, back to Redis 7.0 cannot), and never from Dragonfly, which cannot be a
primary for Redis or Valkey replicas (compat-facts.md). Otherwise a logical reverse sync is
needed (``kvmigrate sync`` in replica or scan mode, new primary as the source).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate.compat.rdb import can_load_rdb_of
from migrate.cutover.fence import FenceRecord, unfence
from migrate.cutover.link import NativeLink
from migrate.cutover.run import Cutover, CutoverOptions, CutoverResult
from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.serverinfo import ServerIdentity, identify


@dataclass(frozen=True)
class RollbackPath:
    native: bool
    reason: str


def choose_path(old: ServerIdentity, new: ServerIdentity) -> RollbackPath:
    if new.flavor == "dragonfly":
        return RollbackPath(False, "Dragonfly cannot be a primary for Redis or Valkey replicas "
                                   "(dragonfly src/server/replica.cc)")
    load = can_load_rdb_of(old, new)
    if not load.ok:
        return RollbackPath(False, f"native reverse replication cannot work: {load.reason}")
    return RollbackPath(True, f"native reverse replication: {load.reason}")


def rollback_native(old: Endpoint, new: Endpoint, options: CutoverOptions, *,
                    fence_record: FenceRecord | None, sync_timeout_s: float = 3600,
                    notify: Callable[[str], None] = lambda _m: None) -> CutoverResult:
    """Make ``old`` a replica of ``new``, wait until it has caught up, cut over back to it."""
    old_c, new_c = old.client(), new.client()
    path = choose_path(identify(old_c.info("server")), identify(new_c.info("server")))
    if not path.native:
        raise KvmError(f"rollback from {new.display()} to {old.display()}: {path.reason}",
                       "use the logical path: kvmigrate sync --source NEW --target OLD "
                       "--mode replica --flush-target, then kvmigrate cutover")
    link = NativeLink(new_c, old_c)
    if options.dry_run:
        notify(f"would run on {old.display()}: REPLICAOF {new.host} {new.port} "
               "(its stale dataset is replaced by the new primary's)")
        return Cutover(new, old, link, options, notify=notify)._plan_only()
    notify(f"{old.display()}: REPLICAOF {new.host} {new.port} ({path.reason})")
    if new.password:
        old_c.config_set("masterauth", new.password)
        if new.username:
            old_c.config_set("masteruser", new.username)
    old_c.execute_command("REPLICAOF", new.host, new.port)
    deadline = time.monotonic() + sync_timeout_s
    while True:
        state = link.state()
        if state.up and state.lag_bytes <= options.max_lag_bytes:
            break
        if time.monotonic() > deadline:
            raise KvmError(f"{old.display()} did not catch up with {new.display()} within "
                           f"{sync_timeout_s:.0f}s", "see the old primary's log")
        time.sleep(0.1)
    result = Cutover(new, old, link, options, notify=notify).run()
    if fence_record is not None:  # the old primary was fenced at the cut-over: lift it
        unfence(old_c, fence_record)
        notify(f"{old.display()}: fence lifted (min-replicas-to-write "
               f"{fence_record.previous_min_replicas_to_write})")
    return result
