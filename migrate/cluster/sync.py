"""A sync from a Redis/Valkey Cluster: one replica-mode reader per source primary, in
parallel, writing through one target (a single node, or a cluster written by slot).

Why replica mode only: a cluster-mode node refuses ``REPLICAOF`` to a node outside its
cluster, so native and proxy mode cannot feed a cluster target, and a single target node can
replicate from one primary only, not merge several. kvmigrate's own PSYNC replica can follow
every source primary at once and write wherever the key's slot lives.

Layout: ``--state DIR`` holds the run's ledger (mode, the shards, the combined status) and one
folder per shard, ``DIR/shard-N``, with that shard's own ledger, spool and ``applied.json``
(what the cut-over reads, per shard). Each shard's reader is a
:class:`migrate.sync.replica.ReplicaSync`; this engine starts them, waits for all to catch
up (at most ``--jobs`` loading their RDB at once), and publishes one status with a line per
shard. ``--resume`` resumes each shard from its own ``applied.json`` (partial resync); a
shard the source makes load again (full resync) first deletes the keys of its own slots on
the target, so the other shards' keys stay. The source's topology is read again before every
phase and every 10 s while following: a failover or resharding of the source during the sync
stops it with the reason (a resharding stops at once, at the first key a migrating slot's new
owner receives: its RESTORE-ASKING, see migrate/sync/rules.py SourceResharded). A
``--resume`` after such a stop reads the topology again: a shard whose slots did not change
continues from its folder (after a failover, from the new primary by partial resync), one
whose slots changed deletes its slots' keys on the target and loads again
(:mod:`migrate.cluster.resume`). No heartbeat (lag is in bytes).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis

from migrate.cluster.resume import REUSE, ShardPlan, arrange, plan, slots_record
from migrate.cluster.sides import ShardTarget, delete_slots
from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.protocol.cluster.topology import SlotRange, discover
from migrate.state.ledger import Ledger
from migrate.state.paths import StatePaths
from migrate.sync.engine import Engine, Worker, join_all
from migrate.sync.modes import REPLICA
from migrate.sync.options import QuietObserver, SyncOptions
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher

# How a shard's reader is built: (source, target, options, ledger, status) -> an engine.
BuildShard = Callable[[Source, Target, SyncOptions, Ledger, StatusPublisher], Engine]

TOPOLOGY_EVERY_S = 10.0
RESUME_HINT = ("once the cluster is stable, run again with --resume and the same --state: "
               "shards whose slots did not change continue (after a failover, from the new "
               "primary), the others load again")
SCAN_RESTART_HINT = ("once the cluster is stable, start a new run with --flush-target (a "
                     "scan-mode cluster sync does not resume)")
CATCH_UP_JOIN_S = 30.0  # how long the other shards may take to stop once catch-up ends
# What a shard's row of the status shows from its reader's figures (lag_bytes in replica
# mode, lag_keys in scan mode: keys changed on the source, not yet copied).
SHARD_FIGURES = ("source_offset", "applied_offset", "lag_bytes", "lag_keys", "commands",
                 "target_errors", "translated_commands", "dropped_commands")


class _ShardNotes:
    def __init__(self, index: int, observer: Any):
        self.index, self.observer = index, observer

    def note(self, message: str) -> None:
        self.observer.note(f"shard {self.index}: {message}")

    def status(self, status: dict[str, Any]) -> None:
        pass


class ClusterSync:
    def __init__(self, shards: list[Endpoint], slots: list[tuple[SlotRange, ...] | None],
                 target: Target, opts: SyncOptions, ledger: Ledger, status: StatusPublisher,
                 mode: str, build: BuildShard):
        self.mode = mode  # replica, or scan where the source refuses PSYNC
        self.build = build
        self.shards, self.slots, self.target, self.opts = shards, slots, target, opts
        self.ledger, self.status = ledger, status
        self.jobs = max(1, opts.jobs or os.cpu_count() or 1)
        self._checked = time.monotonic()
        self.engines: list[Engine] = []  # one reader per shard
        self._totals: dict[int, int] = {}  # shard: its source's keys
        self._stack = contextlib.ExitStack()
        self.errors: dict[int, BaseException] = {}
        self.phases: dict[int, str] = {}

    # --- start ------------------------------------------------------------------------------
    def start(self) -> None:
        self.ledger.offsets["shards"] = [s.display() for s in self.shards]
        self.ledger.offsets["topology"] = [
            {"shard": i, "source": e.display(), "slots": slots_record(s)}
            for i, (e, s) in enumerate(zip(self.shards, self.slots, strict=True))]
        plans = self._arrange() if self.opts.resume and self.slots != [None] else None
        try:
            for i, endpoint in enumerate(self.shards):
                source = Source.connect(endpoint)
                folder = self.ledger.paths.shard(i)
                resume = self.opts.resume and StatePaths(folder).ledger.exists()
                if self.opts.resume and not resume and self.slots[i] is not None:
                    self._delete_slots(i, plans[i].why if plans else "no folder of it")
                sub = self._stack.enter_context(Ledger.open(
                    folder, run={"source": endpoint.display(),
                                 "target": self.target.endpoint.display(),
                                 "mode": self.mode, "shard": i}, resume=resume,
                    moved=("source", "shard")))  # a failover: its PSYNC answer decides
                sub.offsets["slots"] = slots_record(self.slots[i])
                publisher = self._stack.enter_context(
                    StatusPublisher(sub, QuietObserver(), None))
                opts = replace(self.opts, heartbeat=False, state_dir=folder,
                               observer=_ShardNotes(i, self.opts.observer), verify_sample=0,
                               resume=resume)
                target = ShardTarget(self.target, self.slots[i])
                self.engines.append(self.build(source, target, opts, sub, publisher))
            self._start_links()
        except BaseException:
            self.close()
            raise
        self.opts.observer.note(f"{len(self.shards)} shard(s), one replica link each; "
                                f"loading at most {self.jobs} at once")

    def _arrange(self) -> list[ShardPlan]:
        """A resume: which shard folders continue (the same slots), which load again."""
        plans = plan(self.ledger.paths.root, self.shards, self.slots)
        arrange(self.ledger.paths.root, plans)
        for p in plans:
            if p.how == REUSE and p.why != "unchanged":
                self.opts.observer.note(f"shard {p.index}: {p.why}: resuming from its folder")
        return plans

    def _delete_slots(self, i: int, why: str) -> None:
        """Shard ``i`` loads again on a resume: the target's keys of its slots go first
        (they may be of another shard's stream, or stale), the other shards' keys stay."""
        slots = self.slots[i]
        assert slots is not None
        removed = delete_slots(self.target, slots)
        self.opts.observer.note(f"shard {i}: {why}: deleted the {removed} key(s) of its "
                                "slots on the target; loading it again")

    def _start_links(self) -> None:
        """PSYNC to every primary at once: each source may wait before it starts a diskless
        transfer (repl-diskless-sync-delay, 5 s by default), and those waits overlap."""
        def link(i: int, engine: Engine) -> Callable[[threading.Event], None]:
            def run(_: threading.Event) -> None:
                engine.start()
                self.phases[i] = "linked"
            return run

        workers = [Worker(f"shard-{i}-link", "the link", link(i, e))
                   for i, e in enumerate(self.engines)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()  # a start ends by itself: connect and PSYNC have their own deadlines
        self._take_errors(workers)
        self.raise_first_error()

    # --- catch-up: every shard in parallel ------------------------------------------------------
    def catch_up(self) -> None:
        gate = threading.Semaphore(self.jobs)
        done = threading.Event()

        def shard(i: int, engine: Engine) -> Callable[[threading.Event], None]:
            def run(_: threading.Event) -> None:
                try:
                    with gate:
                        self.phases[i] = "loading"
                        engine.catch_up()
                    self.phases[i] = "following"
                except BaseException:
                    self.phases[i] = "failed"
                    self.opts.stop.set()  # one shard failing stops them all
                    raise  # kept by its worker
                finally:
                    if all(p in ("following", "failed") for p in self.phases.values()):
                        done.set()
            return run

        workers = [Worker(f"shard-{i}", "the catch-up", shard(i, e))
                   for i, e in enumerate(self.engines)]
        self.check_topology()
        with self.ledger.phase("catch-up") as counters:
            for w in workers:
                w.start()
            while not done.wait(1.0):
                self.publish("catch-up")
                if self.opts.stop.is_set():  # asked to, or a shard failed
                    break
            # every shard stops with opts.stop; one that does not is an error of its own
            join_all(workers, CATCH_UP_JOIN_S)
            self._take_errors(workers)
            self.raise_first_error()
            counters.update(shards=len(self.engines), keys_loaded=self.keys_loaded())
        self.check_topology()
        self.publish("streaming")

    def check_topology(self) -> None:
        """The source's primaries are still the ones being read (a cluster source)."""
        self._checked = time.monotonic()
        if self.slots == [None]:
            return
        now = discover(self.opts.source)
        was = [(e.host, e.port, s) for e, s in zip(self.shards, self.slots, strict=True)]
        seen = [(sh.endpoint.host, sh.endpoint.port, sh.slots) for sh in now.shards]
        if sorted(was) != sorted(seen):
            shown = ", ".join(f"{h}:{p} {'/'.join(map(str, s))}" for h, p, s in seen)
            same = sorted(w[:2] for w in was) == sorted(w[:2] for w in seen)
            what = "resharded (slots moved between its primaries)" if same else \
                "changed primaries (a failover)"
            raise KvmError(f"the source cluster {what} during the sync (now: {shown}); "
                           "kvmigrate does not follow that",
                           RESUME_HINT if self.mode == REPLICA else SCAN_RESTART_HINT)

    def _take_errors(self, workers: list[Worker]) -> None:
        """What each shard's worker raised; a shard that did not stop in time counts only
        when no shard failed (a failure is the reason the others were stopped)."""
        errors = {i: w.error for i, w in enumerate(workers) if w.error is not None}
        failed = {i: e for i, e in errors.items() if not workers[i].alive}
        self.errors.update(failed or errors)

    def raise_first_error(self) -> None:
        for i, exc in sorted(self.errors.items()):
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise KvmError(f"shard {i} ({self.shards[i].display()}): {message}",
                           getattr(exc, "hint", None))
        for i, engine in enumerate(self.engines):
            try:
                engine.check()
            except KvmError as exc:
                raise KvmError(f"shard {i} ({self.shards[i].display()}): {exc.message}",
                               exc.hint) from None

    # --- figures and status ---------------------------------------------------------------------
    def keys_loaded(self) -> int:
        return sum(r["keys_loaded"] for r in self.shard_figures())

    def shard_figures(self) -> list[dict[str, Any]]:
        rows = []
        for i, engine in enumerate(self.engines):
            row: dict[str, Any] = {"shard": i, "source": self.shards[i].display(),
                                   "phase": self.phases.get(i, "?"),
                                   "keys_total": self._keys_total(i, engine)}
            try:
                figures = engine.figures()
            except (redis.RedisError, OSError) as exc:  # the source did not answer INFO
                row.update(keys_loaded=0, figures_error=str(exc))
            else:
                row.update(keys_loaded=figures["keys"] or 0,
                           **{k: figures.get(k) for k in SHARD_FIGURES if k in figures})
            rows.append(row)
        return rows

    def _keys_total(self, i: int, engine: Any) -> int | None:
        """The shard's keys when its sync began (INFO keyspace, asked once): what its
        progress is a percentage of."""
        if i not in self._totals:
            try:
                self._totals[i] = sum(engine.source.keyspace().values())
            except Exception:  # a figure missing is not a failure
                return None
        return self._totals[i]

    def publish(self, phase: str) -> None:
        rows = self.shard_figures()
        totals = [r["keys_total"] for r in rows]
        self.status.update(sync_phase=phase, mode=self.mode, shards=rows,
                           keys=sum(r["keys_loaded"] for r in rows),
                           keys_total=None if None in totals else sum(totals),
                           lag_bytes=_total(rows, "lag_bytes"), lag_keys=_total(rows, "lag_keys"),
                           commands=sum(r.get("commands") or 0 for r in rows))

    # --- follow ---------------------------------------------------------------------------------
    def tick(self) -> None:
        self.raise_first_error()
        if time.monotonic() - self._checked >= TOPOLOGY_EVERY_S:
            self.check_topology()
        self.opts.stop.wait(1.0)
        self.publish("following")

    def check(self) -> None:
        self.raise_first_error()

    def figures(self) -> dict[str, Any]:
        rows = self.shard_figures()
        return {"mode": self.mode, "keys": sum(r["keys_loaded"] for r in rows),
                "lag_bytes": _total(rows, "lag_bytes"), "lag_keys": _total(rows, "lag_keys"),
                "commands": sum(r.get("commands") or 0 for r in rows),
                "target_errors": sum(r.get("target_errors") or 0 for r in rows)}

    def written_keys(self) -> list[tuple[int, bytes]]:
        return [k for e in self.engines for k in e.written_keys()]

    def lag_window_s(self) -> float:
        return max(e.lag_window_s() for e in self.engines) if self.engines else 1.0

    def close(self) -> None:
        for engine in self.engines:
            with contextlib.suppress(Exception):
                engine.close()
        self._stack.close()



def _total(rows: list[dict[str, Any]], name: str) -> int | None:
    """The shards' ``name`` summed; None when no shard's mode has that figure."""
    values = [r[name] for r in rows if r.get(name) is not None]
    return sum(values) if values else None
