"""``kvmigrate copy``: copy an RDB's keys into a target server."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from migrate.apply.commands import ApplyOptions
from migrate.apply.copy import (
    REPLICATION,
    CopyJob,
    CopyOptions,
    CopyResult,
    NativeLoader,
    parse_db_map,
    refuse_busy_target,
)
from migrate.apply.copy import Progress as CopyProgress
from migrate.apply.snapshot import fetch_snapshot
from migrate.apply.target import Target
from migrate.cli import tls
from migrate.cli.console import err, out, print_json
from migrate.cli.progress import Meter
from migrate.cli.rdb import Flavor
from migrate.endpoint import Endpoint
from migrate.errors import ExitCode, UsageError
from migrate.proxy.primary import check_listen


def _render(result: CopyResult) -> None:
    s = result.stats
    verb = "would write" if result.dry_run else "wrote"
    table = Table("type", "keys", title=f"{verb} {sum(s.keys.values()):,} keys to "
                                        f"{result.target}")
    for kind, n in sorted(s.keys.items()):
        table.add_row(kind, f"{n:,}")
    out.print(table)
    out.print(f"restored (RESTORE): {s.restored:,}; transcoded (typed commands): "
              f"{s.transcoded:,}; functions: {s.functions}; commands: {s.commands:,}",
              markup=False)
    out.print(f"skipped: {s.expired_skipped:,} expired, {s.empty_skipped:,} empty, "
              f"{result.not_matched:,} not matching; expired hash fields: "
              f"{s.expired_fields_skipped:,}", markup=False)
    out.print(f"failed: {result.failed:,}" + "".join(
        f"\n  {n:,}: {why}" for why, n in s.failed.items()), markup=False)
    for f in result.findings:
        if f.severity.value != "info":
            out.print(f"[{f.severity.value}] {f.title}", markup=False)
    out.print(f"path: {result.path}" + (f" (not by replication: {result.path_reason})"
                                        if result.path != REPLICATION else ""), markup=False)
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    out.print(f"elapsed: {result.elapsed_s:.1f} s", markup=False)


@tls.options
def copy_cmd(
    from_rdb: Annotated[Path | None, typer.Option(
        "--from-rdb", metavar="FILE", help="Copy the keys of this RDB file.")] = None,
    from_server: Annotated[str | None, typer.Option(
        "--from-server", metavar="URL", help="Copy a fresh snapshot of this server, taken "
                                             "over the replication protocol (SYNC).")] = None,
    via_ssh: Annotated[str | None, typer.Option(
        "--via-ssh", metavar="ssh://USER@HOST[:PORT]/PATH",
        help="With --from-server: run BGSAVE and fetch the file at PATH over SFTP instead "
             "of SYNC.")] = None,
    ssh_key: Annotated[str | None, typer.Option(
        metavar="FILE", help="SSH private key for --via-ssh.")]
    = None,
    known_hosts: Annotated[str | None, typer.Option(
        metavar="FILE",
        help="known_hosts file for --via-ssh (default ~/.ssh/known_hosts).")] = None,
    target: Annotated[str | None, typer.Option(
        metavar="URL", envvar="KVMIGRATE_TARGET_URL",
        help="Target URL: redis://user:password@host:port/db (user, password and db "
             "optional), rediss:// for TLS.")] = None,
    to_rdb: Annotated[Path | None, typer.Option(
        "--to-rdb", metavar="OUT", help="Write an RDB file that the --to target (and "
                                        "--target-version) loads at startup.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing --to-rdb file.")] = False,
    to: Annotated[Flavor | None, typer.Option(
        "--to", help="Target kind (checked against the server when --target is given).")]
    = None,
    target_version: Annotated[str | None, typer.Option(
        metavar="VERSION", help="Target version when there is no live target.")] = None,
    db_map: Annotated[str | None, typer.Option(
        "--db-map", metavar="SRC:DST,...", help="Write source database SRC to DST.")] = None,
    match: Annotated[str | None, typer.Option(metavar="PATTERN",
        help="Only keys matching this glob pattern.")] = None,
    flush_target: Annotated[bool, typer.Option(
        "--flush-target", help="Empty a non-empty target first (FLUSHALL).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Read everything and report what would be written; write nothing.")]
    = False,
    skip_unsupported: Annotated[bool, typer.Option(
        "--skip-unsupported", help="Copy even when the target cannot take some keys; count "
                                   "them as failed.")] = False,
    max_elements: Annotated[int, typer.Option(metavar="N",
        help="Elements per command for big keys.")] = 10_000,
    max_bytes: Annotated[int, typer.Option(
        metavar="BYTES", help="Bytes per command for big keys (and the RESTORE payload limit).")]
    = 4 * 1024 * 1024,
    listen: Annotated[str | None, typer.Option(
        "--listen", metavar="HOST:PORT",
        help="Where a target not on this machine's loopback connects to load the file "
             "itself (default: loopback, a free port).")] = None,
    record_by_record: Annotated[bool, typer.Option(
        "--record-by-record", help="Write key by key even where the target could load the "
                                   "file itself.")] = False,
    fmt: Annotated[str, typer.Option("--format", metavar="table|json",
                                      help="table or json.")] = "table",
    tls_sides: tls.Sides = tls.NONE,
) -> None:
    """Copy keys into a target: from an RDB file, or from a fresh snapshot of a live server
    (--from-server). An empty Redis, Valkey or Dragonfly target that loads every record
    of the file as it is loads it itself, as a replica of kvmigrate for the duration: the
    checksum is verified first, and the target is sent only what kvmigrate has walked.
    Otherwise key by key, the file validated completely (structure and checksum) before
    any key is written: RESTORE payloads when the target reads their encoding, typed
    commands otherwise (big keys split into bounded commands); TTLs are kept as absolute
    expiry and expired keys skipped. A non-empty target is refused unless --flush-target.
    Exit 0 when every key was written, 4 when some failed."""
    if fmt not in ("table", "json"):
        raise UsageError(f"unknown --format {fmt!r}", "use table or json")
    if (from_rdb is None) == (from_server is None):
        raise UsageError("give exactly one source", "--from-rdb FILE or --from-server URL")
    if via_ssh and not from_server:
        raise UsageError("--via-ssh needs --from-server URL (the server to BGSAVE)")
    if (target is None) == (to_rdb is None):
        raise UsageError("give exactly one destination", "--target URL or --to-rdb OUT")
    if to_rdb is not None and to is None:
        raise UsageError("--to-rdb needs --to valkey|dragonfly|redis (and --target-version)")
    if max_elements < 1 or max_bytes < 1024:
        raise UsageError("--max-elements must be >= 1 and --max-bytes >= 1024")
    if from_rdb is not None and not from_rdb.is_file():
        raise UsageError(f"cannot read {from_rdb}: no such file")
    if to_rdb is not None:
        _check_writable(to_rdb, overwrite)
    if listen is not None:
        check_listen(listen)
    # SIGTERM as Ctrl-C: a target loading the file is detached and set back on the way out
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    endpoint = tls_sides.apply(Endpoint.parse(target), "target") if target else None
    source = tls_sides.apply(Endpoint.parse(from_server), "source") if from_server else None
    if endpoint is not None and source is not None:  # fail before the snapshot is taken
        endpoint.client().close()
        if not flush_target and not dry_run:
            refuse_busy_target(endpoint)
    with tempfile.TemporaryDirectory(prefix="kvmigrate-copy-") as work:
        if source is not None:
            from_rdb = Path(work) / "snapshot.rdb"
            if via_ssh:
                _fetch_ssh(source, via_ssh, from_rdb, ssh_key, known_hosts)
            else:
                _fetch(source, from_rdb)
        assert from_rdb is not None
        native = None
        if endpoint is not None and not record_by_record:
            from migrate.proxy.fileload import FileLoad
            native = FileLoad(endpoint, listen, lambda text: err.print(f"note: {text}",
                                                                       markup=False))
        _run(from_rdb, endpoint, to_rdb, overwrite, to, target_version, db_map, match,
             flush_target, dry_run, skip_unsupported, max_elements, max_bytes, fmt, native)


def _check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an --to-rdb path that cannot be written before any work is done."""
    parent = path.resolve().parent
    if path.is_dir():
        raise UsageError(f"--to-rdb {path} is a directory", "give a file name, e.g. out.rdb")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: no such directory {parent}",
                         "create it first or give another --to-rdb path")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {parent} is not writable")
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists", "pass --overwrite to replace it")


def _fetch(source: Endpoint, dest: Path) -> None:
    err.print(f"taking a snapshot of {source.display()} (SYNC)", markup=False)
    with Meter("fetching", "bytes") as meter:
        snap = fetch_snapshot(source, dest, progress=lambda done, total: meter.update(
            done, total))
        meter.finish(snap.size)
    err.print(f"snapshot: {snap.size:,} bytes" + (" (diskless)" if snap.diskless else ""),
              markup=False)


def _fetch_ssh(source: Endpoint, via: str, dest: Path, key: str | None,
               known_hosts: str | None) -> None:
    err.print(f"BGSAVE on {source.display()}, then SFTP from {via}", markup=False)
    with Meter("fetching", "bytes") as meter:
        from migrate.apply.viassh import fetch_via_ssh  # paramiko: only where SSH is used

        size = fetch_via_ssh(source, via, dest, key_file=key, known_hosts=known_hosts,
                             progress=lambda done, total: meter.update(done, total))
        meter.finish(size)
    err.print(f"snapshot: {size:,} bytes", markup=False)


def _run(from_rdb: Path, endpoint: Endpoint | None, to_rdb: Path | None, overwrite: bool,
         to: Flavor | None, target_version: str | None,
         db_map: str | None, match: str | None, flush_target: bool, dry_run: bool,
         skip_unsupported: bool, max_elements: int, max_bytes: int, fmt: str,
         native: NativeLoader | None) -> None:
    options = CopyOptions(db_map=parse_db_map(db_map), match=match, flush_target=flush_target,
                          dry_run=dry_run, skip_unsupported=skip_unsupported,
                          apply=ApplyOptions(max_elements=max_elements, max_bytes=max_bytes))
    hint = Target.named(to.value, target_version) if to else None
    dest = endpoint.display() if endpoint else str(to_rdb)
    err.print(f"copying {from_rdb} to {dest}" +
              (" (dry run)" if dry_run else ""), markup=False)
    last = [CopyProgress()]
    with Meter("connecting" if endpoint is not None else "validating", "bytes") as meter:
        def observe(p: CopyProgress) -> None:
            last[0] = p
            if p.phase in ("validating", "checking", "loading"):  # bytes of the file
                meter.update(p.bytes_done, p.bytes_total, what=p.phase, unit="bytes")
            else:  # writing: keys, out of the keys the validation counted
                meter.update(p.keys_done, p.keys_total, what=p.phase, unit="keys")

        result = CopyJob(from_rdb, endpoint, options, hint, observe, out_path=to_rdb,
                         overwrite=overwrite, native=native).run()
        meter.finish(last[0].keys_done if meter.unit == "keys" else None)
    if fmt == "json":
        print_json(result.to_dict())
    else:
        _render(result)
    if result.failed:
        raise typer.Exit(ExitCode.FAILED)


def register(app: typer.Typer) -> None:
    app.command("copy")(copy_cmd)
