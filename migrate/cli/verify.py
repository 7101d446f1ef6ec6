"""``kvmigrate verify``: prove a target holds what the source holds, key by key."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from migrate.cli import tls
from migrate.cli.console import err, out, print_json
from migrate.cli.progress import Meter
from migrate.cli.throttle import MaxOpsPerS, throttle_line
from migrate.endpoint import Endpoint
from migrate.errors import ExitCode, UsageError
from migrate.sync.options import parse_allow_loss
from migrate.verify.model import VerifyReport
from migrate.verify.runner import VerifyOptions, parse_db_map, verify


def render_table(report: VerifyReport) -> None:
    if report.mismatches:
        table = Table("db", "key", "kind", "why", title="Mismatches")
        for m in report.mismatches:
            table.add_row(str(m.db), m.to_dict()["key"], m.kind, m.detail)
        out.print(table)
    counts = Table("source db", "target db", "source keys", "target keys", "match",
                   title="Keys per database")
    for c in report.counts:
        counts.add_row(str(c.source_db), str(c.target_db), f"{c.source_keys:,}",
                       f"{c.target_keys:,}", "moving" if c.moving else "yes" if c.ok else "NO")
    if report.counts:
        out.print(counts)
    for note in report.notes:
        out.print(f"note: {note}", markup=False)
    if report.unsettled:
        shown = ", ".join(f"db{m.db} {m.to_dict()['key']}" for m in report.unsettled[:10])
        out.print(f"unsettled: {shown}", markup=False)
    verdict = "MATCH" if report.ok else f"MISMATCH: {report.total_mismatches} difference(s)"
    out.print(f"{report.mode} verification of {report.keys_checked:,} keys: {verdict} "
              f"({report.cleared_on_recheck} suspect(s) cleared on re-check, "
              f"{report.elapsed_s:.1f} s)", markup=False)
    if report.throttle is not None:
        out.print(throttle_line(report.throttle, report.source_latency or {}), markup=False)


@tls.options
def verify_cmd(
    source: Annotated[str, typer.Option(
        metavar="URL", help="Source URL, redis://[user:pw@]host:port.",
                                        envvar="KVMIGRATE_SOURCE_URL")],
    target: Annotated[str, typer.Option(
        metavar="URL", help="Target URL.", envvar="KVMIGRATE_TARGET_URL")],
    sample: Annotated[int, typer.Option(
        metavar="N", help="Compare N random keys (the default mode).")]
    = 1000,
    full: Annotated[bool, typer.Option("--full", help="Walk every key of both servers "
                                                      "(bounded memory).")] = False,
    match: Annotated[str | None, typer.Option(
        metavar="PATTERN", help="Only keys matching this glob pattern.")]
    = None,
    ttl_tolerance: Annotated[int, typer.Option("--ttl-tolerance", metavar="MS",
                                               help="Allowed expiry difference.")] = 2000,
    db_map: Annotated[str | None, typer.Option(
        "--db-map", metavar="SRC:DST,...", help="Source database SRC is target database DST.")]
    = None,
    lag_window: Annotated[float, typer.Option(
        "--lag-window", metavar="S", help="Wait this long before re-checking a mismatch "
                                          "(writes in flight).")] = 1.0,
    rechecks: Annotated[int, typer.Option(metavar="N", help="Re-checks of a mismatch before it is "
                                               "reported.")] = 3,
    fmt: Annotated[str, typer.Option(
        "--format", metavar="table|json", help="table or json.")] = "table",
    allow_loss: Annotated[str | None, typer.Option(
        "--allow-loss", metavar="CLASS,...",
        help="Classes of loss the sync was allowed (as given to sync --allow-loss): their "
             "differences are listed as known, never counted as a match.")] = None,
    max_ops_per_s: MaxOpsPerS = None,
    tls_sides: tls.Sides = tls.NONE,
) -> None:
    """Compare the target with the source per type: values, TTLs, hash field TTLs, stream
    entries, groups, consumers and pending entries, key counts per database. Exit 0 when all
    match, 1 otherwise. Keys named __kvmigrate:* (the sync heartbeat) are ignored."""
    if fmt not in ("table", "json"):
        raise UsageError(f"unknown --format {fmt!r}", "use table or json")
    opts = VerifyOptions(full=full, sample=sample, match=match, ttl_tolerance_ms=ttl_tolerance,
                         db_map=parse_db_map(db_map), lag_window_s=lag_window,
                         rechecks=rechecks, allow_loss=parse_allow_loss(allow_loss),
                         max_ops_per_s=max_ops_per_s)
    src = tls_sides.apply(Endpoint.parse(source), "source")
    tgt = tls_sides.apply(Endpoint.parse(target), "target")
    err.print(f"verifying {tgt.display()} against {src.display()} "
              f"({'full walk' if full else f'sample of {sample}'})", markup=False)
    if full:  # a walk of every key: how far, out of how many, until when
        with Meter("verify", "keys") as meter:
            opts.progress = lambda done, total: meter.update(done, total)
            report = verify(src, tgt, opts)
            meter.finish(report.keys_checked, complete=not any(
                n.startswith("stopped after") for n in report.notes))
    else:
        report = verify(src, tgt, opts)
    if fmt == "json":
        print_json(report.to_dict())
    else:
        render_table(report)
    if not report.ok:
        raise typer.Exit(ExitCode.FINDINGS)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_cmd)
