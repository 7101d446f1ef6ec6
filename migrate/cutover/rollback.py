"""Rollback after a cut-over: bring the old primary back in sync with the writes the new
primary took, then the same guarded cut-over back.

Native reverse replication (the old primary becomes a replica of the new one) only where the
old primary can load the new one's RDB version (Redis 7.0 loads RDB 10 at most, so Valkey 8.0,
which writes 11, back to Redis 7.0 cannot), and never from Dragonfly, which cannot be a
primary for Redis or Valkey replicas (docs/compatibility.md).

Otherwise the logical path: a reverse sync in proxy mode, run in this process. kvmigrate is a
replica of the new primary and the primary of the old one: the old primary replicates from
kvmigrate (so it is read-only for clients meanwhile: writes get READONLY, never a silent OK),
and loads the new primary's RDB rewritten for it (header lowered; records it cannot load,
e.g. Valkey 8's listpack sets and v3 streams for Redis 7.0, sent as commands after the RDB),
then the translated stream. Then the same guarded cut-over back, and the old primary's fence
lifted. From Dragonfly there is no PSYNC to follow and no keyspace notification but expiry:
the window path (:mod:`migrate.cutover.window`) copies it with its writes paused throughout,
bounded by ``--window-ms``.

Nothing is left behind: kvmigrate's heartbeat key is deleted on the old primary once its
fence is lifted (a fenced server refuses the DEL), the reverse sync writes none on the new
primary (which ends fenced, so it could not be deleted there), and the reverse sync's spool
(a full copy of the data) is removed when it ends, unless ``--keep-spool``. The messages
name the two servers by what they are ("the Valkey primary", "the old Redis"): in the
reverse sync the new primary is the source, the opposite of the user's ``--source``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from migrate.compat.rdb import can_load_rdb_of
from migrate.cutover.fence import FenceRecord, unfence
from migrate.cutover.link import InProcessProxyLink, NativeLink, ReplicationLink
from migrate.cutover.roles import Roles
from migrate.cutover.run import (
    Cutover,
    CutoverOptions,
    CutoverResult,
    FinalCheck,
    drop_heartbeat,
)
from migrate.cutover.window import WindowRollback
from migrate.endpoint import Endpoint
from migrate.errors import KvmError, UsageError
from migrate.orchestrate.sync_run import run_sync
from migrate.serverinfo import ServerIdentity, identify
from migrate.state.coordination import recorded_phase
from migrate.state.ledger import private_files
from migrate.state.paths import StatePaths
from migrate.sync.modes import PROXY
from migrate.sync.options import SyncOptions
from migrate.sync.progress import describe
from migrate.verify.model import HEARTBEAT_KEY


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


PATHS = ("auto", "native", "logical", "window")

def rollback(old: Endpoint, new: Endpoint, options: CutoverOptions, *,
             fence_record: FenceRecord | None, state_root: Path,
             final_check: FinalCheck | None = None, path: str = "auto",
             window_ms: int | None = None, keep_spool: bool = False,
             notify: Callable[[str], None] = lambda _m: None) -> CutoverResult:
    """The way back: native reverse replication where it works, else the logical path (a
    reverse proxy-mode sync), else (Dragonfly, which cannot be followed) a write window.
    ``keep_spool``: keep the spool (a full copy of the data) in ``state_root``."""
    if path not in PATHS:
        raise UsageError(f"unknown --path {path!r}", f"one of {', '.join(PATHS)}")
    if not options.dry_run:
        private_files()  # spools and records in the state folder: 0600 files, 0700 folders
    old_id = identify(old.client().info("server"))
    new_id = identify(new.client().info("server"))
    chosen = choose_path(old_id, new_id)
    if path == "auto":
        path = "native" if chosen.native else "window" if new_id.flavor == "dragonfly" \
            else "logical"
        notify(f"{chosen.reason}: the {path} path")
    if path == "native" and not chosen.native:
        raise UsageError(f"no native reverse replication from {new.display()} to "
                         f"{old.display()}: {chosen.reason}",
                         "use --path window --window-ms N" if new_id.flavor == "dragonfly"
                         else "use --path logical")
    if path == "native":
        return rollback_native(old, new, options, fence_record=fence_record,
                               final_check=final_check, notify=notify)
    if path == "logical":
        if new_id.flavor == "dragonfly":
            raise UsageError(f"the logical path follows the new primary with PSYNC: "
                             f"{chosen.reason}; and its keyspace notifications cover expiry "
                             "only (notify-keyspace-events takes only Ex, seen on Dragonfly "
                             "1.40.1), so no scan-mode reverse sync can follow it either",
                             "use --path window --window-ms N")
        return rollback_logical(old, new, options, fence_record=fence_record,
                                state_root=state_root, final_check=final_check,
                                notify=notify, old_flavor=old_id.flavor,
                                roles=Roles.of(old_id, new_id), keep_spool=keep_spool)
    if not window_ms:
        raise UsageError(f"rollback from {new.display()} to {old.display()} needs a write "
                         f"window ({chosen.reason}; kvmigrate cannot follow it): its writes "
                         "are paused for the whole copy", "give --window-ms N, the longest "
                         "pause you accept (e.g. 60000); --dry-run shows the steps")
    return WindowRollback(old, new, options, window_ms=window_ms, fence_record=fence_record,
                          state_root=state_root, final_check=final_check,
                          keep_spool=keep_spool, notify=notify).run()


def rollback_logical(old: Endpoint, new: Endpoint, options: CutoverOptions, *,
                     fence_record: FenceRecord | None, state_root: Path, old_flavor: str,
                     final_check: FinalCheck | None = None, sync_timeout_s: float = 3600,
                     roles: Roles | None = None, keep_spool: bool = False,
                     notify: Callable[[str], None] = lambda _m: None) -> CutoverResult:
    """Reverse proxy-mode sync ``new`` -> ``old`` in a thread, then the cut-over back."""
    old_c, new_c = old.client(), new.client()
    roles = roles or Roles.of(identify(old_c.info("server")), identify(new_c.info("server")))
    sync_dir = StatePaths(state_root).rollback_sync
    if options.dry_run:
        notify(f"would run: a reverse sync in proxy mode from {roles.new} ({new.display()}) "
               f"to {roles.old} ({old.display()}), state {sync_dir}: {roles.old} replicates "
               "from kvmigrate, read-only meanwhile; its stale dataset is replaced by "
               f"{roles.new}'s, rewritten for it")
        plan_link = InProcessProxyLink(new_c, old_c, sync_dir, None, threading.Event())
        return _CutoverBack(new, old, plan_link, options, roles, fence_record, None,
                     notify)._plan_only()
    if sync_dir.exists():  # an earlier attempt that did not finish: its state is stale
        shutil.rmtree(sync_dir)
    stop = threading.Event()
    # No heartbeat: the new primary ends fenced, where its key could not be deleted; the
    # catch-up is judged by replication offsets, the cut-over back by the final offset.
    opts = SyncOptions(source=new, target=old, to=old_flavor, mode=PROXY, follow=True,
                       state_dir=sync_dir, replace_target=True, stop=stop, heartbeat=False,
                       keep_spool=keep_spool,
                       mode_reason=f"the rollback's logical path: {roles.old} replicates "
                                   "from kvmigrate, which rewrites for it what it cannot load",
                       observer=_Notes(notify, roles))
    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            run_sync(opts)
        except BaseException as exc:  # reported by the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="rollback-sync", daemon=True)
    thread.start()
    promoted = False
    try:
        _wait_following(sync_dir, thread, box, sync_timeout_s, roles)
        link = InProcessProxyLink(new_c, old_c, sync_dir, thread, stop)
        result = _CutoverBack(new, old, link, options, roles, fence_record, final_check,
                       notify).run()
        promoted = True
    finally:
        stop.set()
        thread.join(60)
        if not promoted:  # the old primary stays as it was: a fenced primary, not a replica
            with contextlib.suppress(redis.RedisError):
                old_c.execute_command("REPLICAOF", "NO", "ONE")
    _lift_fence(old, old_c, fence_record, notify, roles)
    return result


class _CutoverBack(Cutover):
    """The cut-over back, from the new primary to the old one, named by what they are; its
    plan ends with what the rollback does after it: the old primary's fence lifted, then
    kvmigrate's heartbeat key deleted there (the fence refuses the DEL until then)."""

    def __init__(self, new: Endpoint, old: Endpoint, link: ReplicationLink,
                 options: CutoverOptions, roles: Roles, fence_record: FenceRecord | None,
                 final_check: FinalCheck | None, notify: Callable[[str], None]):
        super().__init__(new, old, link, options, final_check=final_check, notify=notify,
                         roles=roles.cutover(), drop_heartbeat=fence_record is None)
        self.fence_record = fence_record

    def _plan_only(self) -> CutoverResult:
        result = super()._plan_only()
        result.roles = self.roles
        if self.fence_record is not None:
            old = self.roles[1]
            result.plan += [f"{old}: CONFIG SET min-replicas-to-write "
                            f"{self.fence_record.previous_min_replicas_to_write} (its fence "
                            "lifted)",
                            f"{old}: DEL {HEARTBEAT_KEY.decode()} (kvmigrate's own heartbeat "
                            "key)"]
        return result

    def run(self) -> CutoverResult:
        result = super().run()
        result.roles = self.roles
        return result


PROGRESS_EVERY_S = 2.0


class _Notes:
    """Sync notes, passed on as the rollback's own, with the servers named by what they are:
    the reverse sync's source is the new primary, its target the old one."""

    def __init__(self, notify: Callable[[str], None], roles: Roles):
        self.notify = notify
        self.roles = roles
        self._phase: object = None
        self._shown = 0.0

    def note(self, message: str) -> None:
        if message.startswith("following the source"):  # Ctrl-C is not the way here
            message = f"caught up: following {self.roles.new} until the switch back"
        self.notify(f"reverse sync: {_named(message, self.roles)}")

    def status(self, status: dict[str, object]) -> None:
        """How far the reverse sync is, a line every few seconds (and at each new phase)."""
        now = time.monotonic()
        phase = status.get("sync_phase")
        if phase == "following" or status.get("phase") == "follow":
            return  # caught up: said once by note()
        progress = describe(dict(status))
        if progress and (phase != self._phase or now - self._shown >= PROGRESS_EVERY_S):
            self._phase, self._shown = phase, now
            keys = status.get("keys")
            self.notify(f"reverse sync: {progress}"
                        + (f"; {keys:,} keys on {self.roles.old}" if isinstance(keys, int)
                           and not progress.startswith("loading") else ""))


def _named(message: str, roles: Roles) -> str:
    """A reverse-sync message with "the source" and "the target" named by what they are."""
    message = re.sub(r"\bthe source\b", roles.new, message)
    return re.sub(r"\bthe target\b", roles.old, message)


def _wait_following(sync_dir: Path, thread: threading.Thread, box: dict[str, BaseException],
                    timeout_s: float, roles: Roles) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if "error" in box:
            exc = box["error"]
            why = _named(str(getattr(exc, "message", None) or exc), roles)
            raise KvmError(f"the reverse sync failed: {why}", getattr(exc, "hint", None))
        if not thread.is_alive():
            raise KvmError("the reverse sync stopped before it caught up")
        if recorded_phase(sync_dir) == "follow":
            return
        if time.monotonic() > deadline:
            raise KvmError(f"the reverse sync did not catch up within {timeout_s:.0f} s")
        time.sleep(0.1)


def _lift_fence(old: Endpoint, old_c: redis.Redis, record: FenceRecord | None,
                notify: Callable[[str], None], roles: Roles) -> None:
    """The old primary's fence lifted; then kvmigrate's heartbeat key, which the cut-over
    back could not delete while the fence refused writes, deleted there."""
    if record is not None:  # the old primary was fenced at the cut-over: lift it
        unfence(old_c, record)
        notify(f"{roles.old} ({old.display()}): fence lifted (min-replicas-to-write "
               f"{record.previous_min_replicas_to_write})")
        drop_heartbeat(old)


def rollback_native(old: Endpoint, new: Endpoint, options: CutoverOptions, *,
                    fence_record: FenceRecord | None, sync_timeout_s: float = 3600,
                    final_check: FinalCheck | None = None,
                    notify: Callable[[str], None] = lambda _m: None) -> CutoverResult:
    """Make ``old`` a replica of ``new``, wait until it has caught up, cut over back to it."""
    old_c, new_c = old.client(), new.client()
    old_id, new_id = identify(old_c.info("server")), identify(new_c.info("server"))
    path = choose_path(old_id, new_id)
    roles = Roles.of(old_id, new_id)
    if not path.native:
        raise KvmError(f"rollback from {new.display()} to {old.display()}: {path.reason}",
                       "`kvmigrate rollback` takes the logical path for it")
    link = NativeLink(new_c, old_c)
    if options.dry_run:
        notify(f"would run on {roles.old} ({old.display()}): REPLICAOF {new.host} {new.port} "
               f"(its stale dataset is replaced by {roles.new}'s)")
        return _CutoverBack(new, old, link, options, roles, fence_record, None, notify)._plan_only()
    notify(f"{roles.old} ({old.display()}): REPLICAOF {new.host} {new.port} ({path.reason})")
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
    result = _CutoverBack(new, old, link, options, roles, fence_record, final_check, notify).run()
    _lift_fence(old, old_c, fence_record, notify, roles)
    return result
