"""The cut-over as a straight script of phases (gh-ost's shape): any failure before promotion
unpauses the source, which keeps serving; the pause always ends.

Order, and why:
1. pre-checks: the link is up, the lag is under a bound, the last verification passed;
2. wait while the postpone file exists (the operator holds the cut-over);
3. ``CLIENT PAUSE <max-pause-ms> WRITE`` on the source: writes are held (not refused), and
   with them expiry, eviction and replication pings, so its replication offset is final; the
   server's own timeout ends the pause even if kvmigrate dies;
4. wait until the target has applied that final offset, within the pause bound;
5. a final verification sample;
6. promote the target (a running sync is sent a stop request: see 10);
7. fence the source (``min-replicas-to-write``). Not earlier: a fenced server answers a write
   with NOREPLICAS at once, even while paused, and a client that fails over on that error
   would write to a target that is not yet promoted (seen here with a replica-mode sync);
8. the source's offset read again (offset-check): had the pause ended early (the server's own
   bound), the writes it let through are not on the target. The cut-over has taken effect,
   so it goes on, but ends with ``ok`` false, ``took_effect`` true and the bytes in
   ``late_write_bytes`` (the command then exits 4 with one line saying so);
   ``CLIENT UNPAUSE``: the held writes now fail with NOREPLICAS and clients move over;
9. kvmigrate's heartbeat key deleted on the target, out of the pause (a slow target cannot
   push the fence past the pause bound);
10. a running sync's answer to the stop request, waited for a few seconds (its wind-down
   is not in the pause); without one, SIGTERM to it, said in one line.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from migrate.cutover.fence import FENCE_MODES, FenceRecord, fence, fence_commands
from migrate.cutover.link import ReplicationLink
from migrate.endpoint import CLIENT_NAME, Endpoint
from migrate.errors import KvmError, UsageError
from migrate.verify.model import HEARTBEAT_KEY

# Keep this much of the pause bound for promotion and unpausing.
PAUSE_MARGIN_MS = 150

FinalCheck = Callable[[], tuple[bool, str]]
Notify = Callable[[str], None]


@dataclass
class CutoverOptions:
    max_pause_ms: int = 2000
    max_lag_bytes: int = 10 * 1024 * 1024
    postpone_file: Path | None = None
    fence: str = "noreplicas"
    dry_run: bool = False
    last_verification_ok: bool | None = None

    def __post_init__(self) -> None:
        if self.fence not in FENCE_MODES:
            raise UsageError(f"unknown --fence {self.fence!r}; one of {', '.join(FENCE_MODES)}")
        if self.max_pause_ms < 4 * PAUSE_MARGIN_MS:
            raise UsageError(f"--max-pause-ms must be at least {4 * PAUSE_MARGIN_MS}")


@dataclass
class StepRecord:
    name: str
    status: str  # done, failed, planned, skipped
    started: float
    ended: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "started": self.started,
                "ended": self.ended, "detail": self.detail}


@dataclass
class CutoverResult:
    ok: bool
    dry_run: bool
    source: str
    target: str
    steps: list[StepRecord] = field(default_factory=list)
    paused_ms: float | None = None
    final_offset: int | None = None
    fence: FenceRecord | None = None
    fences: list[FenceRecord] = field(default_factory=list)  # one per source primary
    clients_left: list[dict[str, str]] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    error: str | None = None
    promoted_at: float | None = None
    # promoted (and fenced, unless --fence none): the cut-over took effect, even when not ok
    took_effect: bool = False
    # bytes the source's offset moved after the final offset (its pause ended early): writes
    # the old primary took that are not on the new one (ok is then false)
    late_write_bytes: int = 0
    # the step under way, or "after STEP" between two; None once the run ended (a record
    # read back with it set: the cut-over was killed there)
    running: str | None = None
    # what to call the server left behind and the one promoted in messages, when "the old
    # primary" and "the target" would mislead (a rollback); not part of the record
    roles: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "dry_run": self.dry_run, "source": self.source,
                "target": self.target, "paused_ms": self.paused_ms,
                "final_offset": self.final_offset,
                "fence": self.fence.to_dict() if self.fence else None,
                "fences": [f.to_dict() for f in self.fences],
                "clients_left": self.clients_left, "plan": self.plan, "error": self.error,
                "promoted_at": self.promoted_at, "took_effect": self.took_effect,
                "late_write_bytes": self.late_write_bytes, "running": self.running,
                "steps": [s.to_dict() for s in self.steps]}


class CutoverFailed(KvmError):
    """Cut-over stopped before promotion; the source was unpaused and keeps serving."""


class Cutover:
    def __init__(self, source: Endpoint, target: Endpoint, link: ReplicationLink,
                 options: CutoverOptions, *, final_check: FinalCheck | None = None,
                 notify: Notify = lambda _m: None, sources: list[Endpoint] | None = None,
                 roles: tuple[str, str] = ("source", "target"), drop_heartbeat: bool = True,
                 progress: Callable[[CutoverResult], None] = lambda _r: None):
        """``sources``: every primary to pause and fence (a cluster's); default: ``source``.
        ``roles``: what the plan and the messages call the two (a rollback names them by
        what they are: its source is the new primary). ``drop_heartbeat``: delete
        kvmigrate's heartbeat key on the target at promotion (a caller whose target is
        still fenced then does it itself, once the fence is lifted). ``progress``: called
        with the record as each step starts and ends (the caller saves it, so that a
        cut-over killed midway leaves a record of the step it was in)."""
        self.source_ep = source
        self.roles = roles
        self.drop_heartbeat = drop_heartbeat
        self.sources = sources or [source]
        self.target_ep = target
        self.link = link
        self.options = options
        self.final_check = final_check
        self.notify = notify
        self.progress = progress
        self.result = CutoverResult(ok=False, dry_run=options.dry_run,
                                    source=source.display(), target=target.display())

    # --- the script ------------------------------------------------------------------
    def run(self) -> CutoverResult:
        clients = [ep.client() for ep in self.sources]
        if self.options.dry_run:
            try:
                self._precheck()
            except CutoverFailed as exc:  # a plan is still useful before the sync has run
                self.result.plan.append(f"note: if run now, the cut-over would refuse: "
                                        f"{exc.one_line()}")
            return self._plan_only()
        self._precheck()
        self._wait_postponed()
        paused_at = None
        paused: list[redis.Redis] = []
        promoted = False
        try:
            with self._step("pause", max_pause_ms=self.options.max_pause_ms,
                            primaries=len(clients)):
                for client in clients:  # every primary; any failure unpauses those paused
                    client.execute_command("CLIENT", "PAUSE", self.options.max_pause_ms,
                                           "WRITE")
                    paused.append(client)
                    if paused_at is None:
                        paused_at = time.monotonic()
            assert paused_at is not None
            deadline = paused_at + (self.options.max_pause_ms - PAUSE_MARGIN_MS) / 1000
            with self._step("final-offset") as detail:
                source_final = self.link.source_offset()
                final = self.link.mark_final()
                detail["offset"] = self.result.final_offset = final
                if final != source_final:
                    detail["source_offset"] = source_final
            with self._step("catch-up") as detail:
                detail["applied"] = self._wait_applied(final, deadline)
            if self.final_check is not None:
                with self._step("final-verify") as detail:
                    ok, summary = self.final_check()
                    detail["summary"] = summary
                    if not ok:
                        raise CutoverFailed(f"final verification failed: {summary}")
            if time.monotonic() > deadline:
                raise CutoverFailed("the pause bound was used up before promotion",
                                    "raise --max-pause-ms or reduce the lag first")
            with self._step("promote", commands=self.link.promote_commands()):
                self.link.promote()
                promoted = True
                self.result.promoted_at = time.time()
            if self.options.fence != "none":
                with self._step("fence", commands=fence_commands(), primaries=len(clients)):
                    for client in clients:
                        fence(client, self._fencing)
            else:
                self.notify("warning: --fence none: the old primary will accept writes after "
                            "the cut-over; clients that have not switched will write there")
            with self._step("offset-check") as detail:
                after = self.link.source_offset()
                detail.update(offset=after, moved=after - source_final)
                self.result.late_write_bytes = max(0, after - source_final)
        except BaseException as exc:
            if not promoted:
                if isinstance(exc, KvmError):
                    raise CutoverFailed(f"cut-over aborted before promotion: {exc.message}",
                                        "the source was unpaused and keeps serving"
                                        + (f"; {exc.hint}" if exc.hint else "")) from None
                if isinstance(exc, redis.RedisError | OSError):
                    raise CutoverFailed(f"cut-over aborted before promotion: {exc}",
                                        "the source was unpaused and keeps serving") from None
            raise
        finally:
            if paused_at is not None:
                self._unpause(paused, paused_at)
        self.result.took_effect = True
        if self.drop_heartbeat:
            with self._step("drop-heartbeat", key=HEARTBEAT_KEY.decode()):
                drop_heartbeat(self.target_ep)
        self._await_sync_stop()
        self.result.clients_left = [c for client in clients for c in clients_left(client)]
        self.result.ok = not self.result.late_write_bytes
        if self.result.late_write_bytes:
            self.result.error = self._late_writes()
        return self.result

    def _late_writes(self) -> str:
        """The line for writes the old primary took after the final offset."""
        fenced = "it is fenced now, so no more arrive" if self.options.fence != "none" else \
            "it is NOT fenced (--fence none): more may arrive"
        old, new = self.source_ep.display(), self.target_ep.display()
        return (f"the cut-over took effect ({self._role(1)} {new} is the primary) but "
                f"{self.result.late_write_bytes:,} bytes of writes reached {self._role(0)} "
                f"{old} after the final offset (its write pause ended early, at its "
                f"--max-pause-ms bound) and are not on {self._role(1)}: `kvmigrate verify "
                f"--source {old} --target {new}` lists the keys that differ; {fenced}")

    # --- phases ----------------------------------------------------------------------
    def _fencing(self, record: FenceRecord) -> None:
        """What to restore on a primary about to be fenced, on record before it is (a
        cut-over killed once the server took the fence can still be rolled back)."""
        self.result.fences.append(record)
        self.result.fence = self.result.fences[0]
        self.progress(self.result)

    def _precheck(self) -> None:
        with self._step("precheck") as detail:
            state = self.link.state()
            detail.update(link_up=state.up, lag_bytes=state.lag_bytes,
                          source_offset=state.source_offset,
                          applied_offset=state.applied_offset,
                          last_verification_ok=self.options.last_verification_ok)
            if not state.up:
                raise CutoverFailed(state.why_down or "the target is not replicating from the "
                                    "source (link down)",
                                    "check `kvmigrate sync` and the target's log")
            if state.lag_bytes > self.options.max_lag_bytes:
                raise CutoverFailed(f"{self._role(1)} is {state.lag_bytes:,} bytes behind (bound "
                                    f"{self.options.max_lag_bytes:,})",
                                    "wait for the sync to catch up, then retry")
            if self.options.last_verification_ok is False:
                raise CutoverFailed("the last verification found mismatches",
                                    "run `kvmigrate verify` until it passes")

    def _plan_only(self) -> CutoverResult:
        pause = self.options.max_pause_ms
        each = f" (on each of the {len(self.sources)} source primaries at once)" \
            if len(self.sources) > 1 else ""
        source, target = self.roles
        plan = [f"{source}: CLIENT PAUSE {pause} WRITE{each}",
                f"{source}: INFO replication (final master_repl_offset)",
                f"{target}: wait until the applied offset reaches it "
                f"(within {pause - PAUSE_MARGIN_MS} ms)"]
        if self.final_check is not None:
            plan.append(f"{source} and {target}: final verification sample")
        plan += [f"{target}: {c}" for c in self.link.promote_commands()]
        if self.options.fence != "none":
            plan += [f"{source}: {c}" for c in fence_commands()]
        plan.append(f"{source}: INFO replication (its offset must not have moved since the "
                    "final one: else the cut-over ends with exit 4)")
        plan.append(f"{source}: CLIENT UNPAUSE (writes held by the pause now fail with "
                    "NOREPLICAS)")
        if self.drop_heartbeat:
            plan.append(f"{target}: DEL {HEARTBEAT_KEY.decode()} (kvmigrate's own heartbeat "
                        "key, after the pause)")
        self.result.plan = plan + self.result.plan
        now = time.time()
        self.result.steps += [StepRecord(p.split(":")[0], "planned", now, now, {"command": p})
                              for p in plan]
        self.result.ok = True
        return self.result

    def _wait_postponed(self) -> None:
        path = self.options.postpone_file
        if path is None or not path.exists():
            return
        with self._step("postponed", file=str(path)):
            self.notify(f"cut-over postponed while {path} exists; remove it to proceed")
            last = 0.0
            while path.exists():
                if time.monotonic() - last > 10:
                    self.notify(f"waiting: {path} exists")
                    last = time.monotonic()
                time.sleep(0.2)
            self.notify(f"{path} removed: cutting over")

    def _wait_applied(self, final: int, deadline: float) -> int:
        while True:
            applied = self.link.applied_offset()
            if applied >= final:
                return applied
            if time.monotonic() > deadline:
                raise CutoverFailed(f"{self._role(1)} did not reach {self._role(0)}'s final "
                                    "offset "
                                    f"{final} within the pause bound (applied {applied})",
                                    "raise --max-pause-ms or retry when the lag is lower")
            time.sleep(0.002)

    def _await_sync_stop(self) -> None:
        """A running sync asked to stop at promotion answers once it has wound down; waited
        for here, after the pause, so that its wind-down never lengthens the pause."""
        started = time.time()
        outcome = self.link.after_promotion()
        if outcome is None:
            return
        status = "done" if outcome.answer is not None else "failed"
        self.result.steps.append(StepRecord("sync-stop", status, started, time.time(),
                                            outcome.detail))
        if outcome.note:
            self.notify(outcome.note)

    def _unpause(self, clients: list[redis.Redis], paused_at: float) -> None:
        for client in clients:
            try:
                client.execute_command("CLIENT", "UNPAUSE")
            except redis.RedisError as exc:  # the server's own timeout still ends the pause
                self.notify(f"CLIENT UNPAUSE failed ({exc}); the pause ends by itself after "
                            f"{self.options.max_pause_ms} ms")
        self.result.paused_ms = round((time.monotonic() - paused_at) * 1000, 1)
        self._record("unpause", "done", {"paused_ms": self.result.paused_ms})

    def _role(self, side: int) -> str:
        """A role for a sentence: "the source", "the target", or the caller's own name."""
        role = self.roles[side]
        return role if role.startswith("the ") else f"the {role}"

    # --- records ---------------------------------------------------------------------
    def _record(self, name: str, status: str, detail: dict[str, Any]) -> None:
        now = time.time()
        self.result.steps.append(StepRecord(name, status, now, now, detail))

    def _step(self, name: str, **detail: Any) -> _Step:
        return _Step(self, name, detail)


class _Step:
    def __init__(self, owner: Cutover, name: str, detail: dict[str, Any]):
        self.owner, self.name, self.detail = owner, name, detail

    def __enter__(self) -> dict[str, Any]:
        self.started = time.time()
        self.owner.result.running = self.name
        self.owner.progress(self.owner.result)
        self.owner.notify(f"{self.name} ...")
        return self.detail

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        status = "done" if exc_type is None else "failed"
        if exc is not None:
            self.detail["error"] = getattr(exc, "message", None) or str(exc)
        ended = time.time()
        self.owner.result.steps.append(StepRecord(self.name, status, self.started, ended,
                                                  self.detail))
        self.owner.result.running = f"after {self.name}"
        self.owner.progress(self.owner.result)
        self.owner.notify(f"{self.name}: {status} in {(ended - self.started) * 1000:,.0f} ms")


def drop_heartbeat(target: Endpoint) -> None:
    """kvmigrate's heartbeat key came over with the data; it is not the clients'. (A fenced
    server refuses the DEL: delete it there once its fence is lifted.)"""
    with contextlib.suppress(redis.RedisError, KvmError):
        target.client().delete(HEARTBEAT_KEY)


def clients_left(client: redis.Redis) -> list[dict[str, str]]:
    """Clients still connected to the old primary (not kvmigrate's own, not replicas)."""
    left = []
    for c in client.client_list():
        flags = str(c.get("flags", ""))
        if c.get("name") == CLIENT_NAME or "S" in flags or "M" in flags:
            continue
        left.append({k: str(c.get(k, "")) for k in ("addr", "name", "lib-name", "lib-ver",
                                                    "age", "cmd", "user")})
    return left
