"""How the target follows the source, seen from the cut-over: offsets and promotion.

``NativeLink`` is the target replicating with REPLICAOF; ``ReplicaModeLink`` a running
``sync --mode replica --follow``; ``ProxyModeLink`` a running ``sync --mode proxy --follow``
(the target replicates from kvmigrate); ``ScanModeLink`` a running ``sync --mode scan
--follow`` (no offsets: a barrier through its notification connection,
:mod:`migrate.state.coordination`). Each provides the same things: a final mark taken under the
pause, what the target has applied (comparable with it), and promotion."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import redis

from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.orchestrate.modes import (
    APPLIED_FILE,
    BARRIER,
    TARGET_REPLICATES_KVMIGRATE,
    lookup,
)
from migrate.state.coordination import (
    STOP,
    BarrierClient,
    RunOwner,
    StopOutcome,
    SyncControl,
    applied_offset,
)
from migrate.state.paths import StatePaths
from migrate.sync.modes import NATIVE, PROXY, REPLICA, SCAN


@dataclass(frozen=True)
class LinkState:
    up: bool
    source_offset: int
    applied_offset: int
    why_down: str | None = None

    @property
    def lag_bytes(self) -> int:
        return max(self.source_offset - self.applied_offset, 0)


class ReplicationLink(Protocol):
    mode: str

    def state(self) -> LinkState: ...

    def source_offset(self) -> int: ...

    def mark_final(self) -> int:
        """Under the pause: the mark ``applied_offset`` must reach (an offset, or a token)."""
        ...

    def applied_offset(self) -> int: ...

    def promote(self) -> None: ...

    def promotion_begun(self, since: float) -> bool:
        """Whether a promotion was (at least in part) made since ``since`` (time.time()):
        asked of a cut-over killed inside its promote step."""
        ...

    def after_promotion(self) -> StopOutcome | None:
        """Once the pause has ended: how the running sync's stop went (None: nothing was
        asked of one)."""
        ...

    def promote_commands(self) -> list[str]: ...


def _info(client: redis.Redis) -> dict:
    return client.info("replication")


def _primary(client: redis.Redis) -> bool:
    return _info(client).get("role") not in ("slave", "replica")


class NativeLink:
    """The target is a replica of the source (REPLICAOF). A ``sync --mode native --follow``
    run watching it (it owns the state folder) is asked to stop just before the promotion,
    as a replica-mode run is (its answer is waited for once the pause has ended); the
    target replicates by itself, so nothing waits for that run before the promotion."""

    mode = NATIVE
    STOP_ANSWER_S = 10.0

    def __init__(self, source: redis.Redis, target: redis.Redis,
                 state_root: Path | None = None):
        self.source = source
        self.target = target
        self.owner = RunOwner(state_root) if state_root is not None else None
        self.control = SyncControl(state_root) if state_root is not None else None
        self.stop_request: int | None = None

    def source_offset(self) -> int:
        return int(_info(self.source)["master_repl_offset"])

    def mark_final(self) -> int:
        return self.source_offset()

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
        if self.control is not None and self.owner is not None and self.owner.running():
            # first: the run then takes the target's promotion for the cut-over's
            self.stop_request = self.control.request(STOP)
        self.target.execute_command("REPLICAOF", "NO", "ONE")

    def promotion_begun(self, since: float) -> bool:
        return _primary(self.target)

    def after_promotion(self) -> StopOutcome | None:
        if self.stop_request is None or self.control is None:
            return None
        return self.control.stop(self.stop_request, self.STOP_ANSWER_S,
                                 "the native-mode sync --follow")

    def promote_commands(self) -> list[str]:
        return ["REPLICAOF NO ONE (on the target)", "stop a native-mode sync --follow that "
                "watches it, if one runs (a stop request in its state folder)"]


class ReplicaModeLink:
    """A ``sync --mode replica --follow`` run: kvmigrate itself applies the source's stream.

    The applied offset is the one the run records after every batch the target has answered
    (``applied.json`` in its state folder); promotion is asking the run to stop (a stop
    request in its state folder, :mod:`migrate.state.coordination`), as the target is already
    a primary. Its answer is waited for once the pause has ended (with the source paused and
    then fenced, nothing new can reach it), at most :attr:`STOP_ANSWER_S`; without one, SIGTERM
    to the pid in its pidfile.
    """

    mode = REPLICA
    STOP_ANSWER_S = 10.0  # above a sync's own wind-down (a proxy drains its target up to 5 s)

    def __init__(self, source: redis.Redis, state_root: Path):
        self.source = source
        self.root = state_root
        self.owner = RunOwner(state_root)
        self.control = SyncControl(state_root)
        self.stop_request: int | None = None

    def pid_text(self) -> str:
        return self.owner.describe()

    def running(self) -> bool:
        return self.owner.running()

    def source_offset(self) -> int:
        return int(_info(self.source)["master_repl_offset"])

    def mark_final(self) -> int:
        return self.source_offset()

    def applied_offset(self) -> int:
        return applied_offset(self.root)

    def state(self) -> LinkState:
        return LinkState(self.running(), self.source_offset(), self.applied_offset())

    def promote(self) -> None:
        self.stop_request = self.control.request(STOP)

    def promotion_begun(self, since: float) -> bool:
        """A stop request since then: the run stops (or has stopped) applying."""
        return self.control.requested_since(STOP, since)

    def after_promotion(self) -> StopOutcome | None:
        if self.stop_request is None:
            return None
        return self.control.stop(self.stop_request, self.STOP_ANSWER_S,
                                 f"the {self.mode}-mode sync")

    def stop_text(self) -> str:
        return (f"a stop request ({self.control.request_path.name}; SIGTERM to "
                f"{self.pid_text()} if it is not answered within {self.STOP_ANSWER_S:g} s)")

    def promote_commands(self) -> list[str]:
        return [f"stop the replica-mode sync: {self.stop_text()}; the target is already a "
                "primary"]


class ProxyModeLink(ReplicaModeLink):
    """A ``sync --mode proxy --follow`` run: the target is a replica of kvmigrate.

    The applied offset is the source offset of the last command the target has acknowledged
    (``applied.json``, rewritten by the run as ACKs come). Promotion: ``REPLICAOF NO ONE`` on
    the target (it stops taking the proxy's stream at once), then the run is stopped."""

    mode = PROXY

    def __init__(self, source: redis.Redis, target: redis.Redis, state_root: Path):
        super().__init__(source, state_root)
        self.target = target

    def state(self) -> LinkState:
        info = _info(self.target)
        linked = info.get("role") in ("slave", "replica") and \
            info.get("master_link_status") == "up"
        running = self.running()
        why = None if running and linked else (
            "the proxy-mode sync is not running" if not running
            else "the target is not linked to the proxy (master_link_status not up)")
        return LinkState(running and bool(linked), self.source_offset(),
                         self.applied_offset(), why)

    def promote(self) -> None:
        self.target.execute_command("REPLICAOF", "NO", "ONE")
        super().promote()

    def promotion_begun(self, since: float) -> bool:
        return _primary(self.target) or super().promotion_begun(since)

    def promote_commands(self) -> list[str]:
        return ["REPLICAOF NO ONE (on the target: it stops taking the proxy's stream)",
                f"stop the proxy-mode sync: {self.stop_text()}"]


class InProcessProxyLink(ProxyModeLink):
    """A proxy-mode sync running in a thread of this process (a rollback's reverse sync):
    promotion is ``REPLICAOF NO ONE`` on its target and setting its stop event."""

    def __init__(self, source: redis.Redis, target: redis.Redis, state_root: Path,
                 thread: threading.Thread | None, stop: threading.Event):
        super().__init__(source, target, state_root)
        self.thread, self.stop = thread, stop  # no thread: a plan only

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def promote(self) -> None:
        # the reverse sync is told first, so that its target leaving is no surprise to it
        # (everything was applied: the cut-over waited for the final offset)
        self.stop.set()
        self.target.execute_command("REPLICAOF", "NO", "ONE")

    def after_promotion(self) -> StopOutcome | None:
        return None  # its thread is the rollback's own, ended by its stop event

    def promote_commands(self) -> list[str]:
        return ["REPLICAOF NO ONE, once kvmigrate's reverse sync is told to stop (it takes "
                "no more of its stream)"]


class ScanModeLink(ReplicaModeLink):
    """A ``sync --mode scan --follow`` run. Scan mode has no replication offset: the final
    mark is a barrier token (see :mod:`migrate.state.coordination`), and "applied" is the last
    token the run has answered after copying everything notified before it."""

    mode = SCAN
    PROBE_TIMEOUT_S = 5.0
    STOP_TIMEOUT_S = 3.0

    def __init__(self, source: redis.Redis, state_root: Path):
        super().__init__(source, state_root)
        self.barrier = BarrierClient(state_root)

    def state(self) -> LinkState:
        """Up when the run answers a barrier within a few seconds (before any pause: this
        also shows the backlog of changes to copy is small)."""
        if not self.running():
            return LinkState(False, 0, 0, "the scan-mode sync is not running")
        started = time.monotonic()
        token = self.barrier.request()
        if not self.barrier.wait(token, self.PROBE_TIMEOUT_S):
            return LinkState(False, 0, 0, f"the scan-mode sync did not answer a barrier within "
                             f"{self.PROBE_TIMEOUT_S:.0f} s (still copying a backlog?)")
        self.probe_ms = round((time.monotonic() - started) * 1000, 1)
        return LinkState(True, 0, 0)

    def mark_final(self) -> int:
        return self.barrier.request()

    def applied_offset(self) -> int:
        return self.barrier.applied()

    def promote(self) -> None:
        self.stop_copying()
        super().promote()

    def promotion_begun(self, since: float) -> bool:
        return self.barrier.stop_requested_since(since) or super().promotion_begun(since)

    def stop_copying(self) -> None:
        """Stop the run's applier and wait until it says so: a key it copied after this
        could overwrite a client's write on the new primary."""
        self.barrier.request_stop()
        deadline = time.monotonic() + self.STOP_TIMEOUT_S
        while not self.barrier.stopped():
            if time.monotonic() > deadline:
                raise KvmError("the scan-mode sync did not stop copying within "
                               f"{self.STOP_TIMEOUT_S:.0f} s", "check that it is running")
            time.sleep(0.002)

    def promote_commands(self) -> list[str]:
        return ["ask the scan-mode sync to stop copying and wait until it has "
                f"({self.barrier.request_path.name}); then {self.stop_text()}; "
                "the target is already a primary"]


class ClusterLink:
    """A running cluster sync (``migrate.cluster.sync``): one reader per source primary, each
    with its files in ``STATE/shard-N`` (``applied.json`` in replica mode, the barrier files
    in scan mode). The final mark is every shard's own (its offset, or a barrier token), taken
    under the pause; "applied" counts the shards that reached theirs, so the cut-over waits
    until all have. Promotion stops every shard's copying (scan mode), then the one run."""

    def __init__(self, shards: list[ReplicaModeLink], state_root: Path, mode: str = REPLICA):
        self.mode = mode
        self.shards = shards
        self.run = ReplicaModeLink(shards[0].source, state_root)
        self._finals: list[int] = []

    def running(self) -> bool:
        return self.run.running()

    def state(self) -> LinkState:
        if not self.running():
            return LinkState(False, 0, 0, "the cluster sync is not running")
        states = [s.state() for s in self.shards]
        down = next((f"shard {i}: {st.why_down}" for i, st in enumerate(states) if not st.up),
                    None)
        return LinkState(down is None, sum(s.lag_bytes for s in states), 0, down)

    def source_offset(self) -> int:
        return sum(s.source_offset() for s in self.shards)

    def mark_final(self) -> int:
        self._finals = [s.mark_final() for s in self.shards]
        return len(self.shards)

    def applied_offset(self) -> int:
        if not self._finals:
            return 0
        return sum(1 for s, final in zip(self.shards, self._finals, strict=True)
                   if s.applied_offset() >= final)

    def promote(self) -> None:
        for shard in self.shards:
            if isinstance(shard, ScanModeLink):
                shard.stop_copying()
        self.run.promote()

    def promotion_begun(self, since: float) -> bool:
        return any(isinstance(shard, ScanModeLink) and shard.barrier.stop_requested_since(since)
                   for shard in self.shards) or self.run.promotion_begun(since)

    def after_promotion(self) -> StopOutcome | None:
        if self.run.stop_request is None:
            return None
        return self.run.control.stop(self.run.stop_request, self.run.STOP_ANSWER_S,
                                     "the cluster sync")

    def promote_commands(self) -> list[str]:
        first = "ask every shard's scan-mode reader to stop copying and wait until each has; " \
            if self.mode == SCAN else ""
        return [f"{first}stop the cluster sync: {self.run.stop_text()}; every "
                "target primary is already a primary"]


def link_for(mode: str, source: Endpoint, target: Endpoint, state_dir: Path,
             shards: list[Endpoint] | None = None) -> ReplicationLink:
    """How the cut-over sees a sync of ``mode`` (:mod:`migrate.orchestrate.modes`, its
    ``cutover``): the target replicating by itself (native), or a running ``--follow`` run
    (one per source primary of a cluster sync, in ``STATE/shard-N``)."""
    how = lookup(mode).cutover
    if shards:
        shard_link = ScanModeLink if how == BARRIER else ReplicaModeLink
        return ClusterLink([shard_link(ep.client(), StatePaths(state_dir).shard(i))
                            for i, ep in enumerate(shards)], state_dir, mode)
    if how == APPLIED_FILE:
        return ReplicaModeLink(source.client(), state_dir)
    if how == TARGET_REPLICATES_KVMIGRATE:
        return ProxyModeLink(source.client(), target.client(), state_dir)
    if how == BARRIER:
        return ScanModeLink(source.client(), state_dir)
    return NativeLink(source.client(), target.client(), state_dir)
