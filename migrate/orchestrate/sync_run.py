"""A sync run as a straight script of phases (gh-ost's shape), recorded in the ledger:

prepare (empty-target rule) -> start (mode-specific) -> catch-up -> verify -> follow (until
SIGINT/SIGTERM) -> done. A resumed run skips what the ledger says is done.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from migrate.cluster.sides import ClusterTarget, cluster_sides
from migrate.cluster.sync import ClusterSync
from migrate.errors import ConnectError, KvmError, UsageError
from migrate.orchestrate.modes import REGISTRY, lookup
from migrate.orchestrate.succession import moved_source
from migrate.proxy.primary import check_listen
from migrate.state.coordination import RequestWatcher
from migrate.state.disk import check_writable, disk_errors
from migrate.state.ledger import Ledger, remove_spools, save_written_keys
from migrate.state.paths import StatePaths, default_state_dir
from migrate.sync.engine import Engine
from migrate.sync.modes import AUTO, MODES, NATIVE, PROXY, REPLICA, SCAN
from migrate.sync.options import TARGETS, SyncOptions
from migrate.sync.progress import source_totals
from migrate.sync.retry import COMMANDS, RetryStopped, fault_class, retry
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher
from migrate.verify.model import VerifyReport
from migrate.verify.runner import VerifyOptions, verify

WRITTEN_KEYS_EVERY_S = 5.0  # how often a following sync saves the written-keys sample


@dataclass
class SyncResult:
    mode: str
    reason: str
    state_dir: Path
    verification: VerifyReport | None
    # --max-ops-per-s (scan): what the limiter did, and the source's latency meanwhile
    throttle: dict[str, Any] | None = None
    source_latency: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.verification is None or self.verification.ok


def choose_mode(source: Source, target: Target, opts: SyncOptions) -> tuple[str, str]:
    """The mode to run and why; refuses a mode the facts say cannot work."""
    if opts.mode not in MODES:
        raise UsageError(f"unknown --mode {opts.mode!r}", f"modes: {', '.join(MODES)}")
    # proxy mode is looked at only when asked for or when choosing
    candidates = [m for m in REGISTRY.values() if m.name != PROXY or opts.mode in (PROXY, AUTO)]
    why_not = {m.name: m.refusal(source, target, opts) for m in candidates}
    if opts.resume and opts.mode == AUTO:
        why_not.update({m.name: f"{m.name} mode cannot --resume" for m in candidates
                        if not m.resumes})
    if opts.mode != AUTO:
        if why_not[opts.mode]:
            others = [m for m in (REPLICA, SCAN) if m != opts.mode and not why_not[m]]
            hint = f"use --mode {others[0]}" if others else \
                "; ".join(f"{m}: {r}" for m, r in why_not.items() if m != opts.mode)
            raise UsageError(f"--mode {opts.mode} cannot work: {why_not[opts.mode]}", hint)
        return opts.mode, opts.mode_reason or f"asked for with --mode {opts.mode}"
    if not why_not[NATIVE]:
        unsafe = native_loses_writes(source, target)
        if unsafe is None:
            return NATIVE, "the target can load the source's RDB and replicate from it, " \
                           "and has every write command the source serves"
        why_not[NATIVE] = unsafe
    if not why_not[PROXY]:
        return PROXY, f"native cannot work ({why_not[NATIVE]}); the target loads the " \
                      "source's RDB through kvmigrate, which rewrites what it cannot read"
    if not why_not[REPLICA]:
        return REPLICA, f"native cannot work ({why_not[NATIVE]}); kvmigrate replicates " \
                        "itself and converts what the target cannot load"
    if not why_not[SCAN]:
        return SCAN, f"native cannot work ({why_not[NATIVE]}); replica cannot work " \
                     f"({why_not[REPLICA]}); scan copies key by key"
    raise UsageError("no mode can do this sync: " + "; ".join(f"{m}: {r}" for m, r in
                                                              why_not.items()))


def native_loses_writes(source: Source, target: Target) -> str | None:
    """Why native replication could lose writes without a word (None: it cannot). In native
    mode the target replicates directly and kvmigrate never sees the stream, so auto picks it
    only where every write command the source serves arrives intact."""
    if target.identity.flavor == "dragonfly":
        return ("a Dragonfly replica drops what it cannot take without an error (vector sets, "
                "field TTLs, commands it lacks: docs/compatibility.md "
                "'Dragonfly as a replica of Redis')")
    try:
        missing = sorted(source.write_commands() - target.command_names())
    except redis.RedisError as exc:
        return f"the two servers' command tables could not be compared ({exc})"
    if missing:
        shown = ", ".join(m.upper() for m in missing[:6]) + (" ..." if len(missing) > 6 else "")
        return (f"the target lacks {len(missing)} write command(s) the source serves "
                f"({shown}): native replication would drop them without a word")
    return None


def _look_again(source: Source, target: Target, opts: SyncOptions, engine: Engine,
                first: VerifyReport) -> VerifyReport:
    """The catch-up sample of a --follow run is taken while clients write: a key can still
    be in flight there longer than the lag window (scan mode under a heavy writer). Once
    following ends, the keys that differed (and the written keys) are compared again; a
    lost write still differs, and the run fails on it."""
    suspects = [(m.db, m.key) for m in first.mismatches + first.unsettled]
    again = verify(source.endpoint, target.endpoint, VerifyOptions(
        sample=opts.verify_sample if first.unlisted_mismatches else 1, match=opts.match,
        db_map=opts.db_map, lag_window_s=engine.lag_window_s(),
        written=suspects + engine.written_keys(), allow_loss=opts.allow_loss))
    opts.observer.note(f"the catch-up sample found {first.total_mismatches} mismatch(es) while "
                       f"clients wrote; compared again after following: "
                       f"{again.total_mismatches} mismatch(es)")
    return again


def _check_target_flavor(target: Target, to: str) -> None:
    if to not in TARGETS:
        raise UsageError(f"unknown --to {to!r}", f"targets: {', '.join(TARGETS)}")
    if target.identity.flavor != to:
        raise UsageError(f"--to {to} but the target is {target.identity}",
                         f"use --to {target.identity.flavor} if that is the intended target")


def _prepare_target(target: Target, opts: SyncOptions) -> None:
    keys = target.keyspace()
    if not any(keys.values()):
        return
    held = ", ".join(f"db{db}: {n}" for db, n in sorted(keys.items()))
    if not opts.flush_target:
        raise UsageError(f"the target is not empty ({held})",
                         "add --flush-target to delete its keys first (FLUSHALL on the target)")
    replication = {} if isinstance(target, ClusterTarget) else target.info("replication")
    if replication.get("role") == "slave":  # FLUSHALL would meet READONLY
        raise UsageError(
            f"--flush-target: the target is a read-only replica of "
            f"{replication.get('master_host')}:{replication.get('master_port')} (link "
            f"{replication.get('master_link_status', '?')}), so its keys cannot be deleted",
            "make it a primary first (REPLICAOF NO ONE on the target: a stopped native- or "
            "proxy-mode run leaves it a replica), then run again")
    target.flushall()
    opts.observer.note(f"--flush-target: deleted every key on the target ({held})")


def make_engine(name: str, source: Source, target: Target, opts: SyncOptions, ledger: Ledger,
                status: StatusPublisher) -> Engine:
    return lookup(name).build(source, target, opts, ledger, status)


def local_cleanup(opts: SyncOptions) -> None:
    """What a run that cannot wind down (a server stopped answering) still does before the
    process ends: its spools removed (unless --keep-spool) and its pidfile."""
    root = opts.state_dir or default_state_dir(opts.source.address, opts.target.address)
    pidfile = StatePaths(root).pidfile
    ours = pidfile.exists() and pidfile.read_text().strip() == str(os.getpid())
    if not opts.keep_spool and (ours or not pidfile.exists()):  # never another run's
        remove_spools(root)
    if ours:
        pidfile.unlink()


class _CommandLinkDown(Exception):
    """A follow tick's command link (INFO, the heartbeat) to a server dropped."""


@dataclass
class _CommandLinks:
    """The follow ticks' command links: failed attempts and links made again (status JSON:
    ``command_link_attempts_failed``, ``command_link_reconnects``)."""

    attempts_failed: int = 0
    reconnects: int = 0


def _tick(engine: Engine, opts: SyncOptions, status: StatusPublisher,
          links: _CommandLinks) -> None:
    """One tick of --follow; a dropped command link (a server restarting, a stale pooled
    connection) is tried again under the reconnect policy of its class (``commands``), not
    a stop at once."""
    failed_before = links.attempts_failed

    def counted(_n: int, exc: BaseException) -> None:
        links.attempts_failed += 1
        status.update(command_link_attempts_failed=links.attempts_failed,
                      last_command_link_fault=f"{fault_class(exc)}: {exc}")

    def once() -> None:
        try:
            engine.tick()
        except redis.AuthenticationError:
            raise  # not a link to try again: the follow loop says it in one line
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise _CommandLinkDown(str(exc)) from exc

    retry(once, policy=opts.reconnect.policy(COMMANDS),
          what="following (a server's command link)", stop=opts.stop,
          note=opts.observer.note, counted=counted, on=(_CommandLinkDown,))
    if links.attempts_failed > failed_before:
        links.reconnects += 1
        status.update(command_link_reconnects=links.reconnects)


def run_sync(opts: SyncOptions) -> SyncResult:
    if opts.to not in TARGETS:  # a usage error, said before any connection is tried
        raise UsageError(f"unknown --to {opts.to!r}", f"targets: {', '.join(TARGETS)}")
    check_writable(opts.state_dir or default_state_dir(opts.source.address,
                                                       opts.target.address))
    source = Source.connect(opts.source)
    target = Target.connect(opts.target)
    _check_target_flavor(target, opts.to)
    sides = cluster_sides(source, target, opts)
    if sides is not None:
        target, shards, shard_slots, mode, reason = sides
    else:
        shards, shard_slots = None, []
        mode, reason = choose_mode(source, target, opts)
    if opts.max_ops_per_s and mode != SCAN:
        raise UsageError(f"--max-ops-per-s paces scan mode's reads; mode {mode} reads the "
                         "source through replication", "use --mode scan, or drop the option")
    opts.observer.note(f"mode {mode}: {reason}")
    state_dir = opts.state_dir or default_state_dir(source.endpoint.address,
                                                    target.endpoint.address)
    run: dict[str, object] = {
        "source": source.endpoint.display(), "target": target.endpoint.display(),
        "mode": mode, "match": opts.match, "db_map": opts.db_map.describe()}
    if shards is not None:
        run["cluster"] = True
        run["shards"] = [s.display() for s in shards]
    moved = moved_source(state_dir, run, source, target, opts.observer.note, shards) \
        if opts.resume else ()
    verification: VerifyReport | None = None
    with disk_errors(state_dir), \
            Ledger.open(state_dir, run=run, resume=opts.resume, moved=moved) as ledger, \
            StatusPublisher(ledger, opts.observer, opts.status_json) as status, \
            RequestWatcher(state_dir, opts.stop) as requests:
        ledger.note_tls(source=source.endpoint, target=target.endpoint)
        status.update(mode=mode, reason=reason, source=str(source), target=str(target))
        if shards is None:  # what a percentage is of (a cluster: per shard, not totalled)
            totals = source_totals(source.info("keyspace"),
                                   source.info("memory").get("used_memory"))
            if opts.match:  # only some keys: their number is not known beforehand
                totals["keys_total"] = None
            status.update(**totals)
        if mode == PROXY:  # a bad --listen must fail before the target is flushed
            check_listen(opts.listen)
        if not ledger.done("prepare"):
            with ledger.phase("prepare"):
                if opts.replace_target and REGISTRY[mode].replaces_target:
                    opts.observer.note("the target's keys are replaced by what it loads from "
                                       "replication (not flushed first)")
                else:
                    _prepare_target(target, opts)
        if shards is not None:
            engine: Engine = ClusterSync(shards, shard_slots, target, opts, ledger,
                                         status, mode, REGISTRY[mode].build)
        else:
            engine = make_engine(mode, source, target, opts, ledger, status)
        failure: BaseException | None = None
        try:
            engine.start()
            engine.catch_up()
            if opts.stop.is_set():
                raise KeyboardInterrupt
            written = engine.written_keys()
            save_written_keys(ledger.paths.written_keys, written)
            if opts.verify_sample > 0:
                with ledger.phase("verify") as counters:
                    verification = verify(source.endpoint, target.endpoint, VerifyOptions(
                        sample=opts.verify_sample, match=opts.match, db_map=opts.db_map,
                        lag_window_s=engine.lag_window_s(), written=written,
                        allow_loss=opts.allow_loss))
                    counters.update(keys=verification.keys_checked,
                                    written_keys=verification.written_checked,
                                    mismatches=verification.total_mismatches)
                    status.update(verification=f"{verification.keys_checked} keys sampled "
                                               f"({verification.written_checked} written by "
                                               "the stream), "
                                               f"{verification.total_mismatches} mismatches"
                                               + (f", {len(verification.known)} known "
                                                  "differences (--allow-loss)"
                                                  if verification.known else ""))
            if opts.follow:
                with ledger.phase("follow") as counters:
                    opts.observer.note("following the source: Ctrl-C (SIGINT), SIGTERM or "
                                       "a cut-over's stop request stops")
                    saved = time.monotonic()
                    command_links = _CommandLinks()
                    while not opts.stop.is_set():
                        if time.monotonic() - saved >= WRITTEN_KEYS_EVERY_S:
                            save_written_keys(ledger.paths.written_keys, engine.written_keys())
                            saved = time.monotonic()
                        try:
                            _tick(engine, opts, status, command_links)
                        except RetryStopped:
                            break
                        except (KvmError, redis.RedisError) as exc:
                            requests.poll()  # a cut-over's stop request, come with this
                            if opts.stop.is_set():  # stopped by a cut-over: the source is
                                break  # paused or fenced (the last heartbeat failed), or
                                # the target promoted (native mode)
                            if "NOREPLICAS" in str(exc):
                                opts.observer.note("the source refuses writes (fenced by a "
                                                   "cut-over): following ends")
                                break
                            if isinstance(exc, redis.AuthenticationError):
                                raise ConnectError(
                                    f"cannot authenticate any more (a password changed "
                                    f"during the run?): {exc}", "give the new password and "
                                    "run again with --resume") from None
                            raise
                    save_written_keys(ledger.paths.written_keys, engine.written_keys())
                    status.update(sync_phase="stopped")
                    requests.poll()  # the fence may have ended following just before it
                    if requests.stop_request is not None:
                        counters["stopped_on_request"] = requests.stop_request
                        status.update(stopped_on_request=requests.stop_request)
                        opts.observer.note("stopped on request (a cut-over's stop request "
                                           f"{requests.stop_request})")
                if verification is not None and not verification.ok:
                    verification = _look_again(source, target, opts, engine, verification)
                    status.update(verification=f"{verification.keys_checked} keys re-checked "
                                               "after following, "
                                               f"{verification.total_mismatches} mismatches")
        except BaseException as exc:
            failure = exc
            raise
        finally:
            try:
                engine.close()
            finally:  # also when a stop signal cut the wind-down short
                other = ledger.taken_by()
                if other is not None:
                    opts.observer.note(f"{ledger.paths.root} is now another kvmigrate's (pid "
                                       f"{other}: the folder was made again under this run); "
                                       "its spools are left to it")
                elif not opts.keep_spool:  # a resumed run asks the source again, never reads
                    remove_spools(ledger.paths.root)
                requests.acknowledge(failure)  # a cut-over waits for this after promotion
        status.update(phase="done" if verification is None or verification.ok
                      else "verification-failed")
        final = ledger.snapshot()["status"]
    return SyncResult(mode, reason, state_dir, verification, final.get("throttle"),
                      final.get("source_latency"))
