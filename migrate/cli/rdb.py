"""``kvmigrate rdb``: look inside RDB files."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.table import Table

from migrate.apply.fit import assess
from migrate.apply.target import Target
from migrate.cli.console import out, print_json
from migrate.cli.progress import Meter
from migrate.errors import UsageError
from migrate.model import Finding
from migrate.rdb.summary import RdbSummary, summarize

app = typer.Typer(help="Look inside RDB files.", no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    json = "json"


class Flavor(StrEnum):
    valkey = "valkey"
    dragonfly = "dragonfly"
    redis = "redis"


def open_rdb(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


# a file this big takes about a second to read: show how far the reading is
SHOW_PROGRESS_BYTES = 2_000_000


@app.command("inspect")
def inspect_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The RDB file.")],
    to: Annotated[Flavor | None, typer.Option(
        "--to", help="Also report what this target cannot take.")] = None,
    target_version: Annotated[str | None, typer.Option(
        metavar="VERSION",
        help="Target version for --to. Default: the oldest supported version of the "
             "target (valkey 8.0.1, dragonfly 1.40, redis 7.0.15), so what it reports holds "
             "on every supported version.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Read an RDB file completely (checksum verified) and summarize it: producer and
    version, AUX fields, keys by database, type and encoding, expiries, biggest keys,
    functions, modules and, with --to, what the target cannot take. A malformed file is
    reported with the byte offset and exit code 2."""
    if target_version and not to:
        raise UsageError("--target-version needs --to (which target it is a version of)",
                         "e.g. --to valkey --target-version 8.1.1")
    target = Target.named(to.value, target_version) if to else None  # checked before reading
    size = file.stat().st_size if file.is_file() else 0
    with open_rdb(file) as fh:
        if size < SHOW_PROGRESS_BYTES:  # read in well under a second: no progress lines
            summary = summarize(fh)
        else:
            with Meter(f"reading {file.name}", "bytes", size) as meter:
                summary = summarize(fh, progress=meter.update)
                meter.finish(summary.file_bytes)
    findings = assess(summary, target) if target else []
    if fmt == Format.json:
        payload = summary.to_dict()
        if target:
            payload["target"] = {"server": str(target),
                                 "findings": [f.to_dict() for f in findings]}
        print_json(payload)
        return
    _print_table(file, summary, target, findings)


def _print_table(file: Path, s: RdbSummary, target: Target | None,
                 findings: list[Finding]) -> None:
    p = s.producer
    out.print(f"{file}: {p.describe()}, {s.file_bytes:,} bytes, checksum {s.checksum}",
              markup=False)
    if s.aux:
        out.print("aux: " + ", ".join(f"{k}={v}" for k, v in s.aux.items()), markup=False)
    out.print(f"keys: {s.keys:,} (" + ", ".join(f"db{d}: {n:,}" for d, n in
                                              sorted(s.by_db.items())) + ")", markup=False)
    table = Table("type", "encoding", "keys", title=None)
    for (kind, enc), n in sorted(s.by_encoding.items()):
        table.add_row(kind, enc, f"{n:,}")
    out.print(table)
    out.print(f"expiries: {s.with_ttl:,} key(s) with a TTL, {s.expired:,} already expired; "
              f"field TTLs: {s.field_ttl_hashes:,} hash(es), {s.fields_with_ttl:,} field(s)",
              markup=False)
    if s.empty_keys:
        out.print(f"empty collections (skipped on load): {s.empty_keys}", markup=False)
    if s.biggest:
        big = Table("db", "key", "type", "encoding", "bytes", "elements", title="biggest keys")
        for k in s.biggest:
            big.add_row(str(k.db), k.key.decode(errors="backslashreplace")[:60], k.kind,
                        k.encoding, f"{k.size:,}", f"{k.elements:,}")
        out.print(big)
    out.print(f"functions: {', '.join(s.functions) or 'none'}; modules: " +
              (", ".join(f"{m} ({n})" for m, n in s.modules.items()) or "none") +
              (f"; module aux: {', '.join(s.module_aux)}" if s.module_aux else "") +
              (f"; slot info records: {s.slot_info}" if s.slot_info else ""), markup=False)
    if target:
        out.print(f"for {target}:", markup=False)
        for f in findings:
            out.print(f"  [{f.severity.value}] {f.title}", markup=False)
            if f.detail:
                out.print(f"      {f.detail}", markup=False)
            if f.remediation:
                out.print(f"      fix: {f.remediation}", markup=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="rdb")
