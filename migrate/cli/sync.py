"""``kvmigrate sync``: copy a live source to a target, keep it caught up, verify it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from migrate.cli import tls
from migrate.cli.console import err, out
from migrate.cli.stopping import install_stop_handlers
from migrate.cli.throttle import MaxOpsPerS, throttle_line
from migrate.endpoint import Endpoint
from migrate.errors import ExitCode
from migrate.orchestrate.sync_run import local_cleanup, run_sync
from migrate.sync.options import SyncOptions, parse_allow_loss
from migrate.sync.progress import describe, human_bytes
from migrate.sync.retry import (
    COMMANDS,
    DEFAULT_RECONNECT_DEADLINE_S,
    REPLICATION,
    parse_reconnect_deadline,
)
from migrate.sync.rules import LOSS_CLASSES
from migrate.verify.runner import parse_db_map

SHOWN = ("phase", "mode", "sync_phase", "progress", "keys", "bytes_copied", "ops_per_s",
         "stream_bytes_per_s", "lag_bytes", "lag_ms", "reconnects", "source_link_stalled_s",
         "verification")
PLAIN_EVERY_S = 2.0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def figures(status: dict[str, Any]) -> dict[str, str]:
    """The panel's rows as text: each count with its total, the progress with its ETA."""
    rows = {k: _fmt(status.get(k)) for k in SHOWN if status.get(k) is not None}
    keys, keys_total = status.get("keys"), status.get("keys_total")
    if isinstance(keys, int) and isinstance(keys_total, int):
        rows["keys"] = f"{keys:,}/{keys_total:,}"
    copied, total = status.get("bytes_copied"), status.get("bytes_total")
    if isinstance(copied, int) and isinstance(total, int) and total > 0:
        rows["bytes_copied"] = f"{human_bytes(copied)}/{human_bytes(total)} (RDB)"
    elif isinstance(copied, int):
        rows["bytes_copied"] = human_bytes(copied)
    if isinstance(status.get("stream_bytes_per_s"), int):
        rows["stream_bytes_per_s"] = f"{human_bytes(status['stream_bytes_per_s'])}/s"
    if isinstance(status.get("lag_bytes"), int):
        rows["lag_bytes"] = human_bytes(status["lag_bytes"])
    rows.pop("progress", None)
    progress = describe(status)
    if progress:
        rows["progress"] = progress
    return rows


class CliObserver:
    """Notes as lines on stderr; the live status as a Rich table on a terminal, else a plain
    line every few seconds (no escape codes)."""

    def __init__(self) -> None:
        self.live: Live | None = None
        self._last_line = 0.0
        self._last_phase: str | None = None

    def note(self, message: str) -> None:
        err.print(f"kvmigrate: {message}", markup=False)

    def status(self, status: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.update(self._table(status))
            return
        now = time.monotonic()
        phase = f"{status.get('phase')}/{status.get('sync_phase')}"
        if phase != self._last_phase or now - self._last_line >= PLAIN_EVERY_S:
            self._last_phase, self._last_line = phase, now
            rows = figures(status)
            line = "  ".join(f"{k}={rows[k]}" for k in SHOWN if k in rows)
            shards = status.get("shards")
            if shards:
                line += "  shards=" + ",".join(f"{r['shard']}:{r['phase']}" for r in shards)
            if line:  # nothing known yet: no empty line
                err.print(line, markup=False, highlight=False)

    @staticmethod
    def _table(status: dict[str, Any]) -> Table:
        table = Table("", "", show_header=False, title="kvmigrate sync")
        rows = figures(status)
        for key in SHOWN:
            table.add_row(key.replace("_", " "), rows.get(key, "-"))
        for row in status.get("shards") or []:  # a cluster source: one line per primary
            table.add_row(f"shard {row['shard']}",
                          f"{row['source']}  {row['phase']}  keys {_fmt(row.get('keys_loaded'))}"
                          + (f"/{row['keys_total']:,}" if row.get("keys_total") else "")
                          + f"  lag {_fmt(row.get('lag_bytes'))} B")
        return table


@tls.options
def sync_cmd(
    source: Annotated[str, typer.Option(
        metavar="URL", help="Source URL, redis://[user:pw@]host:port.",
                                        envvar="KVMIGRATE_SOURCE_URL")],
    target: Annotated[str, typer.Option(
        metavar="URL", help="Target URL (must be empty, see --flush-target).",
                                        envvar="KVMIGRATE_TARGET_URL")],
    to: Annotated[str, typer.Option(
        metavar="valkey|dragonfly|redis", help="What the target is: valkey, dragonfly, or redis "
                                         "(a way back).")]
    = "valkey",
    mode: Annotated[str, typer.Option(
        metavar="MODE", help="auto, native, replica, scan or proxy.")] = "auto",
    listen: Annotated[str | None, typer.Option(
        "--listen", metavar="HOST:PORT", help="proxy: where the target replicates from "
                                              "(default 127.0.0.1, a free port).")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Keep the target in sync until "
                                                          "SIGINT/SIGTERM.")] = False,
    verify_sample: Annotated[int, typer.Option(
        metavar="N", help="Keys to verify once caught up (0: skip).")]
    = 1000,
    state: Annotated[Path | None, typer.Option(
        "--state", metavar="DIR", help="Ledger folder (default .kvmigrate/SRC-to-TGT).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --state.")]
    = False,
    status_json: Annotated[Path | None, typer.Option(
        "--status-json", metavar="FILE", help="Rewrite the status here every second.")] = None,
    metrics_listen: Annotated[str | None, typer.Option(
        "--metrics-listen", metavar="[HOST:]PORT",
        help="Serve Prometheus metrics at http://HOST:PORT/metrics while the sync runs "
             "(for --follow): phase, keys, bytes, lag, ops/s, commands applied, translated, "
             "dropped and refused, per shard for a cluster; no keys or URLs. HOST is "
             "127.0.0.1 unless given; there is no authentication.")] = None,
    flush_target: Annotated[bool, typer.Option(
        "--flush-target", help="Delete every key on the target first.")] = False,
    match: Annotated[str | None, typer.Option(
        metavar="PATTERN", help="Only keys matching this glob (scan).")]
    = None,
    db_map: Annotated[str | None, typer.Option(
        "--db-map", metavar="SRC:DST,...",
        help="Copy source database SRC into DST (replica, scan).")]
    = None,
    heartbeat: Annotated[bool, typer.Option(
        "--heartbeat/--no-heartbeat", help="Write __kvmigrate:heartbeat on the source to "
                                           "measure lag in ms.")] = True,
    set_notify: Annotated[bool, typer.Option(
        "--set-notify-keyspace-events", help="scan: let kvmigrate CONFIG SET "
                                             "notify-keyspace-events on the source.")] = False,
    stall_timeout: Annotated[float, typer.Option(
        "--stall-timeout", metavar="S", help="Give up after this long without progress.")]
    = 300.0,
    reconnect_deadline: Annotated[list[str] | None, typer.Option(
        "--reconnect-deadline", metavar="S|CLASS=S,...",
        help=f"Keep trying a dropped link S seconds (default "
             f"{DEFAULT_RECONNECT_DEADLINE_S:g}), then stop (--resume continues). CLASS=S: "
             f"one class of link, {REPLICATION} (the source's PSYNC link) or {COMMANDS} "
             "(a follow tick's INFO, heartbeat). E.g. 600,commands=30.")] = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", metavar="N", help="A cluster source: shards loading at once (default: the "
                                    "cores).")] = None,
    source_cluster: Annotated[bool, typer.Option(
        "--source-cluster", help="The source must be a cluster (detected anyway from "
                                 "cluster_enabled:1).")] = False,
    target_cluster: Annotated[bool, typer.Option(
        "--target-cluster", help="The target must be a cluster (detected anyway).")] = False,
    allow_loss: Annotated[str | None, typer.Option(
        "--allow-loss", metavar="CLASS,...",
        help="Drop and count writes of these classes instead of stopping the sync: "
             f"{', '.join(LOSS_CLASSES)} (default: none; any write the target cannot "
             "hold stops the sync).")] = None,
    keep_spool: Annotated[bool, typer.Option(
        "--keep-spool", help="Keep the spool in --state when the run ends (a full copy of "
                             "the data, for diagnosis; removed by default).")] = False,
    max_ops_per_s: MaxOpsPerS = None,
    tls_sides: tls.Sides = tls.NONE,
) -> None:
    """Copy a live source to the target and keep it caught up; exits 0 once caught up and
    the verification sample passes (with --follow: when stopped)."""
    src = tls_sides.apply(Endpoint.parse(source), "source")
    tgt = tls_sides.apply(Endpoint.parse(target), "target")
    opts = SyncOptions(source=src, target=tgt, to=to,
                       mode=mode, follow=follow, verify_sample=verify_sample, state_dir=state,
                       resume=resume, status_json=status_json, flush_target=flush_target,
                       match=match, db_map=parse_db_map(db_map), heartbeat=heartbeat,
                       set_notify_keyspace_events=set_notify, stall_timeout_s=stall_timeout,
                       reconnect=parse_reconnect_deadline(reconnect_deadline or []),
                       listen=listen, jobs=jobs, source_cluster=source_cluster,
                       target_cluster=target_cluster,
                       allow_loss=parse_allow_loss(allow_loss), keep_spool=keep_spool,
                       max_ops_per_s=max_ops_per_s)
    observer = CliObserver()

    install_stop_handlers(opts.stop, last_resort=lambda: local_cleanup(opts))
    live = Live(console=err, refresh_per_second=2, transient=False) if err.is_terminal \
        else None
    if live is not None:
        observer.live = live
        live.start()
    from migrate.sync.metrics import serving  # the HTTP server only when asked for

    try:
        with serving(metrics_listen, observer) as opts.observer:
            result = run_sync(opts)
    finally:
        if live is not None:
            live.stop()
    report = result.verification
    verdict = "not verified (--verify-sample 0)" if report is None else (
        f"verification sample of {report.keys_checked:,} keys "
        f"({report.written_checked:,} written during the sync): "
        + (f"MISMATCH ({report.total_mismatches})" if not report.ok else
           f"MATCH except {len(report.known)} known difference(s) allowed by --allow-loss"
           if report.known else "MATCH"))
    out.print(f"sync {result.mode}: {opts.source.display()} -> {opts.target.display()}: "
              f"{verdict}; ledger {result.state_dir}", markup=False)
    if report is not None and not report.ok:
        for m in report.mismatches[:20]:
            out.print(f"  db{m.db} {m.to_dict()['key']}: {m.kind}: {m.detail}", markup=False)
    if report is not None and report.known:
        for m in report.known[:20]:
            out.print(f"  known: db{m.db} {m.to_dict()['key']}: {m.kind}: {m.detail}",
                      markup=False)
    if result.throttle is not None:
        out.print(throttle_line(result.throttle, result.source_latency or {}), markup=False)
    if result.mode == "native":
        err.print("kvmigrate: the target stays a replica of the source; at cut-over run "
                  "REPLICAOF NO ONE on it", markup=False)
    if result.mode == "proxy":
        err.print("kvmigrate: the target stays a replica of the proxy's address (its link is "
                  "down once kvmigrate exits); at cut-over run REPLICAOF NO ONE on it",
                  markup=False)
    if not result.ok:
        raise typer.Exit(ExitCode.FINDINGS)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_cmd)
