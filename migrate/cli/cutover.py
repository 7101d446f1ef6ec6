"""``kvmigrate cutover`` and ``kvmigrate rollback``: the guarded switch and the way back."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from migrate.cli import tls
from migrate.cli.console import err, out, print_json
from migrate.cutover.fence import FenceRecord, is_fenced
from migrate.cutover.interrupted import (
    TookEffect,
    earlier_cutover,
    restart_options,
    stopped_where,
)
from migrate.cutover.link import ClusterLink, ReplicaModeLink, link_for
from migrate.cutover.rollback import rollback
from migrate.cutover.run import Cutover, CutoverOptions, CutoverResult, FinalCheck, drop_heartbeat
from migrate.cutover.state import SyncState
from migrate.endpoint import Endpoint
from migrate.errors import KvmError, UsageError
from migrate.orchestrate.modes import REGISTRY
from migrate.state.paths import CUTOVER_FILE, ROLLBACK_FILE, StatePaths

StateOpt = Annotated[Path, typer.Option(
    "--state", metavar="DIR", help="The sync's state folder (--state DIR).")]
SourceOpt = Annotated[str | None, typer.Option(
    "--source", metavar="URL",
    help="Source URL, when it needs a password (or KVMIGRATE_SOURCE_URL).")]
TargetOpt = Annotated[str | None, typer.Option(
    "--target", metavar="URL",
    help="Target URL, when it needs a password (or KVMIGRATE_TARGET_URL).")]
PauseOpt = Annotated[int, typer.Option("--max-pause-ms", metavar="MS",
                                       help="Upper bound of the write pause on the source.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run",
                                         help="Show each step and command; change nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
FormatOpt = Annotated[str, typer.Option("--format", metavar="table|json",
                                              help="table or json.")]


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise UsageError(f"unknown --format {fmt!r}", "use table or json")


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"confirmation needed: {question}", "add --yes to proceed without "
                         "a prompt, or --dry-run to see the plan")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


def _final_check(source: Endpoint, target: Endpoint, sample: int,
                 state_dir: Path | None = None) -> FinalCheck | None:
    """A verification sample taken during the pause (writes are held, so no lag window),
    with the keys the running sync saw written (its state folder's written-keys sample)."""
    if sample <= 0:
        return None
    from migrate.state.ledger import load_written_keys
    from migrate.verify.runner import VerifyOptions, verify

    def check() -> tuple[bool, str]:
        written = load_written_keys(StatePaths(state_dir).written_keys) if state_dir else []
        report = verify(source, target, VerifyOptions(sample=sample, lag_window_s=0.05,
                                                      rechecks=1, written=written))
        first = "; first: " + ", ".join(f"{m.kind} {m.key!r} ({m.detail})" for m in
                                       report.mismatches[:3]) if report.mismatches else ""
        return report.ok, (f"{report.keys_checked} keys sampled "
                           f"({report.written_checked} written by the stream), "
                           f"{report.total_mismatches} mismatches{first}")
    return check


def _show(result: CutoverResult, fmt: str, what: str) -> None:
    left = result.roles[0] if result.roles else "the old primary"  # fenced, clients leave it
    if fmt == "json":
        print_json(result.to_dict())
        return
    if result.dry_run:
        out.print(f"{what} plan (dry run, nothing changed):", markup=False)
        for i, line in enumerate(result.plan, 1):
            out.print(f"  {i}. {line}", markup=False)
        return
    now = f"{result.roles[1]} ({result.target})" if result.roles else result.target
    out.print(f"{what} done: writes paused {result.paused_ms} ms; {now} is the primary now",
              markup=False)
    if result.fence:
        out.print(f"{left} ({result.source}) fenced: its writes fail with NOREPLICAS",
                  markup=False)
    if result.clients_left:
        out.print(f"{len(result.clients_left)} client(s) still connected to {left}:",
                  markup=False)
        for c in result.clients_left:
            out.print(f"  {c['addr']} name={c['name'] or '-'} lib={c['lib-name'] or '-'} "
                      f"last={c['cmd']}", markup=False)
    out.print(f"clients must now use {result.target}", markup=False)


def _stop_on_late_writes(result: CutoverResult, hint: str) -> None:
    """A switch that took effect, but with writes on the old primary past the final offset
    (its pause ended early): exit 4, one line, after the record is saved and shown."""
    if result.took_effect and result.late_write_bytes and result.error:
        raise KvmError(result.error, hint)


def _shard_sources(state: SyncState, src: Endpoint) -> list[Endpoint]:
    """A cluster sync's source primaries, in its shard order, with ``src``'s credentials
    (the ledger keeps addresses, never passwords)."""
    shards = []
    for shown in state.ledger["run"]["shards"]:
        where = Endpoint.parse(shown)
        shards.append(dataclasses.replace(src, host=where.host, port=where.port, db=0))
    return shards


def _save_progress(state: SyncState, result: CutoverResult, dry_run: bool) -> None:
    """The record as each step starts and ends: a killed cut-over leaves where it was."""
    if not dry_run:
        state.write(CUTOVER_FILE, result.to_dict())


def _completed(state: SyncState, record: dict[str, Any], took: TookEffect) -> TookEffect:
    """A killed cut-over that took effect: its record marked completed when it holds what
    the fence replaced (saved before the fence was set), so that rollback can undo it."""
    if not record.get("fences"):
        return took
    record.update(ok=True, running=None, completed="by a later `kvmigrate cutover`, which "
                  f"found that this one, killed {stopped_where(record)}, had taken effect")
    state.write(CUTOVER_FILE, record)
    hint = took.hint or "the target is the primary"
    return TookEffect(took.message, f"{hint}, now marked completed (`kvmigrate rollback "
                                    f"--state {state.root}` undoes it)")


@tls.options
def cutover(
    state_dir: StateOpt,
    source: SourceOpt = None,
    target: TargetOpt = None,
    max_pause_ms: PauseOpt = 2000,
    max_lag_bytes: Annotated[int, typer.Option(
        metavar="BYTES", help="Refuse when the target is further "
                                                    "behind than this.")] = 10 * 1024 * 1024,
    postpone_file: Annotated[Path | None, typer.Option(
        metavar="FILE", help="While this file exists, the cut-over waits.")] = None,
    fence: Annotated[str, typer.Option(metavar="noreplicas|none",
                                        help="How to fence the old primary.")] = "noreplicas",
    verify_sample: Annotated[int, typer.Option(
        metavar="N", help="Keys in the final verification sample "
                                                    "(0: none).")] = 200,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    fmt: FormatOpt = "table",
    tls_sides: tls.Sides = tls.NONE,
) -> None:
    """Switch writes from the source to the target: bounded pause, catch-up, promote, fence."""
    _check_format(fmt)
    state = SyncState.load(state_dir, planning=dry_run)
    if state.mode not in REGISTRY:
        raise UsageError(f"cut-over of a {state.mode or 'unknown'}-mode sync is not possible",
                         "the --state DIR must hold a `kvmigrate sync` run in native, replica, "
                         "proxy or scan mode")
    src = tls_sides.apply(state.endpoint("source", source), "source", state.tls("source"))
    tgt = tls_sides.apply(state.endpoint("target", target), "target", state.tls("target"))
    options = CutoverOptions(max_pause_ms=max_pause_ms, max_lag_bytes=max_lag_bytes,
                             postpone_file=postpone_file, fence=fence, dry_run=dry_run,
                             last_verification_ok=state.last_verification_ok())
    shards = _shard_sources(state, src) if state.ledger.get("run", {}).get("cluster") \
        else None
    link = link_for(state.mode, src, tgt, state_dir, shards)
    if not dry_run:
        _confirm(f"Cut over from {src.display()} to {tgt.display()}?", yes)
        primaries = shards or [src]
        record = state.cutover_record()
        try:
            note = earlier_cutover(record, state_dir, lambda: all(
                is_fenced(ep.client()) for ep in primaries), link.promotion_begun,
                restart_options(REGISTRY[state.mode].resumes,
                                isinstance(link, ReplicaModeLink | ClusterLink)))
        except TookEffect as exc:
            # killed before (or inside) its last step: kvmigrate's heartbeat key may still
            # be on the target, which clients now use
            drop_heartbeat(tgt)
            raise _completed(state, record or {}, exc) from None
        if note:
            err.print(note, markup=False)
    if not dry_run and isinstance(link, ReplicaModeLink) and not link.running():
        again = "--follow --resume`" if REGISTRY[state.mode].resumes else \
            "--follow --flush-target` (proxy mode cannot resume)"
        raise UsageError(f"the {state.mode}-mode sync of {state_dir} is not running",
                         f"start it again with `kvmigrate sync ... --mode {state.mode} {again}"
                         ", then cut over while it runs")
    runner = Cutover(src, tgt, link, options, final_check=_final_check(src, tgt, verify_sample,
                                                              state_dir),
                     notify=lambda m: err.print(m, markup=False), sources=shards,
                     progress=lambda r: _save_progress(state, r, dry_run))
    try:
        result = runner.run()
    finally:
        if not dry_run:
            runner.result.running = None  # ended (a record left with it set: killed)
            state.write(CUTOVER_FILE, runner.result.to_dict())
    _show(result, fmt, "cut-over")
    _stop_on_late_writes(result, f"`kvmigrate rollback --state {state_dir}` can still switch "
                         "back, replacing the old primary's data: copy those keys first, "
                         "then add --discard-late-writes")


@tls.options
def rollback_cmd(
    state_dir: StateOpt,
    source: SourceOpt = None,
    target: TargetOpt = None,
    max_pause_ms: PauseOpt = 2000,
    verify_sample: Annotated[int, typer.Option(
        metavar="N", help="Keys in the final verification sample (0: none).")] = 200,
    path: Annotated[str, typer.Option(
        metavar="auto|native|logical|window",
        help="auto: native where the old primary loads the new one's RDB, else logical (a "
             "reverse proxy-mode sync), else window (Dragonfly).")] = "auto",
    window_ms: Annotated[int | None, typer.Option(
        "--window-ms", metavar="N", help="The window path pauses the new primary's writes for "
                                         "the whole copy: at most this long.")] = None,
    keep_spool: Annotated[bool, typer.Option(
        "--keep-spool", help="Keep the reverse sync's or the window's spool in --state when "
                             "the rollback ends (a full copy of the data, for diagnosis; "
                             "removed by default).")] = False,
    discard_late_writes: Annotated[bool, typer.Option(
        "--discard-late-writes",
        help="Roll back a cut-over whose old primary took writes after the final offset: "
             "the rollback replaces them with the new primary's data (copy them first).")
    ] = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    fmt: FormatOpt = "table",
    tls_sides: tls.Sides = tls.NONE,
) -> None:
    """After a cut-over: bring the old source back in sync and cut over back to it.

    Native reverse replication where the old primary loads the new one's RDB; otherwise a
    reverse sync in proxy mode (the old primary replicates from kvmigrate, read-only
    meanwhile); from Dragonfly, a copy with its writes paused (--window-ms). Then the
    switch back, and the old primary's fence lifted."""
    _check_format(fmt)
    state = SyncState.load(state_dir, planning=dry_run)
    if state.ledger.get("run", {}).get("cluster"):
        raise UsageError("rollback of a cluster migration is not automated: `kvmigrate "
                         "rollback` moves one primary back",
                         "to go back: lift the fence on every old primary (CONFIG SET "
                         "min-replicas-to-write 0), then kvmigrate sync --source NEW --target "
                         "OLD --flush-target --follow and kvmigrate cutover --state of that "
                         "sync (docs/cluster.md)")
    record = state.cutover_record() or {}
    if record.get("running") and not dry_run:
        raise UsageError(f"the cut-over recorded in {state_dir} was killed "
                         f"{stopped_where(record)} and never finished: there is no completed "
                         "cut-over to roll back",
                         f"run `kvmigrate cutover --state {state_dir}` first: it says what "
                         "the killed one did and what is left")
    if not (record.get("ok") or record.get("took_effect")) and not dry_run:
        raise UsageError(f"no completed cut-over recorded in {state_dir}",
                         "rollback follows `kvmigrate cutover`")
    late = record.get("late_write_bytes") or 0
    if late and not (dry_run or discard_late_writes):
        raise UsageError(f"the cut-over recorded in {state_dir} left {late:,} bytes of writes "
                         "on the old primary only (taken after the final offset): a rollback "
                         "would replace them with the new primary's data",
                         "copy those keys to the new primary first (`kvmigrate verify` lists "
                         "them), then run again with --discard-late-writes")
    old = tls_sides.apply(state.endpoint("source", source), "source", state.tls("source"))
    new = tls_sides.apply(state.endpoint("target", target), "target", state.tls("target"))
    fence = record.get("fence")
    fence_record = FenceRecord(**fence) if fence else None
    if not dry_run:
        _confirm(f"Roll back from {new.display()} to {old.display()}? The old primary's "
                 "stale data is replaced by the new primary's", yes)
    runner_result = rollback(old, new, CutoverOptions(max_pause_ms=max_pause_ms,
                                                      dry_run=dry_run),
                             fence_record=fence_record, state_root=state_dir,
                             final_check=_final_check(new, old, verify_sample),
                             path=path, window_ms=window_ms, keep_spool=keep_spool,
                             notify=lambda m: err.print(m, markup=False))
    if not dry_run:
        state.write(ROLLBACK_FILE, runner_result.to_dict())
    _show(runner_result, fmt, "rollback")
    _stop_on_late_writes(runner_result, f"{ROLLBACK_FILE} in {state_dir} records it")


def register(app: typer.Typer) -> None:
    app.command("cutover")(cutover)
    app.command("rollback")(rollback_cmd)
