"""``kvmigrate preflight``: what a migration to Valkey or Dragonfly would break, read-only."""

from __future__ import annotations

import io
import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrate.cli import tls
from migrate.cli.console import err, out
from migrate.errors import ExitCode, UsageError
from migrate.model import Severity
from migrate.preflight.render import to_markdown
from migrate.preflight.runner import Report
from migrate.preflight.session import DEFAULT_SAMPLE, PreflightRequest, run

STYLE = {Severity.BLOCKER: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


class Target(StrEnum):
    valkey = "valkey"
    dragonfly = "dragonfly"


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


class FailOn(StrEnum):
    blocker = "blocker"
    warning = "warning"


def render_table(report: Report, console: Console) -> None:
    src, tgt = report.source, report.target
    console.print(Text(f"Source: {src['endpoint']} ({src['flavor']} {src['version']}, "
                       f"{src['mode']}, {src['keys']:,} keys, sampled "
                       f"{src['sample']['sampled']:,})"))
    where = f"{tgt.get('endpoint')} " if tgt.get("live") else ""
    console.print(Text(f"Target: {where}{tgt['flavor']} {tgt['version']}"
                       + ("" if tgt.get("live") else " (from the catalogue)")))
    for severity, findings in report.by_severity():
        if not findings:
            continue
        table = Table(title=f"{severity.value.upper()} ({len(findings)})",
                      title_style=STYLE[severity], title_justify="left", show_lines=True,
                      expand=False)
        table.add_column("check", style=STYLE[severity], no_wrap=True)
        table.add_column("finding")
        table.add_column("remedy")
        for f in findings:
            body = Text(f.title)
            if f.detail:
                body.append("\n" + f.detail, style="dim")
            table.add_row(f.id, body, Text(f.remediation))
        console.print(table)


def summary_line(report: Report, fail_on: Severity) -> str:
    counts = report.summary
    failing = len(report.at_or_above(fail_on))
    verdict = f"FAIL ({failing} at or above {fail_on.value})" if failing else "OK"
    return (f"preflight: {counts['blocker']} blocker(s), {counts['warning']} warning(s), "
            f"{counts['info']} info; {verdict}")


def _write(path: Path, text: str) -> None:
    """Write the whole file or nothing (a temporary file renamed into place)."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"cannot write {path}: no such directory {directory}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def register(app: typer.Typer) -> None:
    @app.command("preflight")
    @tls.options
    def preflight_cmd(
        source: Annotated[str, typer.Option(
            "--source", metavar="URL", envvar="KVMIGRATE_SOURCE_URL",
            help="Source URL: redis://user:password@host:port/db (user, password and db "
                 "optional), rediss:// for TLS.")],
        to: Annotated[Target, typer.Option("--to", help="Target server kind.")],
        target: Annotated[str | None, typer.Option(
            "--target", metavar="URL", envvar="KVMIGRATE_TARGET_URL",
            help="Live target URL: its version, config, modules and commands are "
                 "read.")] = None,
        target_version: Annotated[str | None, typer.Option(
            "--target-version", metavar="VERSION",
            help="Target version when no --target is given. Default: the oldest "
                 "supported version (Valkey 8.0), so the findings hold on every supported "
                 "version.")] = None,
        scripts: Annotated[list[Path] | None, typer.Option(
            "--scripts", metavar="PATH", help="A Lua script or a folder of .lua files to analyse; "
                              "repeat for more.")] = None,
        sample: Annotated[int, typer.Option(
            "--sample", metavar="N", help="Keys to sample with SCAN (bounds time and load).")]
        = DEFAULT_SAMPLE,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
        output: Annotated[Path | None, typer.Option(
            "-o", "--output", metavar="FILE",
            help="Write the report to this file instead of stdout.")] = None,
        fail_on: Annotated[FailOn, typer.Option(
            "--fail-on", help="Exit 1 when a finding is at or above this severity.")]
        = FailOn.blocker,
        tls_sides: tls.Sides = tls.NONE,
    ) -> None:
        """Predict what a migration would break, from read-only facts of the source.

        Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it;
        2 usage error; 3 cannot connect or authenticate.
        """
        if output is not None and not (output.parent if str(output.parent) else Path(".")) \
                .is_dir():
            raise UsageError(f"cannot write {output}: no such directory {output.parent}")
        report = run(PreflightRequest(source=source, to=to.value, target=target,
                                      target_version=target_version,
                                      scripts=list(scripts or []), sample=sample,
                                      source_tls=tls_sides.source,
                                      target_tls=tls_sides.target))
        threshold = Severity(fail_on.value)
        if fmt is Format.json:
            text = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
        elif fmt is Format.markdown:
            text = to_markdown(report, fail_on=fail_on.value)
        else:
            text = ""
        if output is not None:
            if fmt is Format.table:
                buffer = io.StringIO()
                render_table(report, Console(file=buffer, width=120, no_color=True,
                                             highlight=False))
                text = buffer.getvalue()
            _write(output, text)
            err.print(f"wrote {output}", markup=False)
        elif fmt is Format.table:
            render_table(report, out)
        else:
            out.file.write(text)
            out.file.flush()
        err.print(summary_line(report, threshold), markup=False)
        if report.at_or_above(threshold):
            raise typer.Exit(int(ExitCode.FINDINGS))
