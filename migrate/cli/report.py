"""``kvmigrate report``: what happened in a migration, from its state folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from migrate.cli.console import err
from migrate.errors import UsageError

FORMATS = ("markdown", "html", "json")


def _write(path: Path, text: str) -> None:
    """All or nothing: a temporary file beside ``path``, then a rename."""
    if path.is_dir():
        raise UsageError(f"-o {path} is a directory", "give a file name, e.g. -o report.html")
    if not path.parent.is_dir():
        raise UsageError(f"-o {path}: no folder {path.parent}")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def report_cmd(
    state: Annotated[Path, typer.Option(
        "--state", metavar="DIR", help="The migration's state folder (sync --state DIR).")],
    fmt: Annotated[str, typer.Option(
        "--format", metavar="markdown|html|json",
        help="markdown, html (one self-contained page with the timeline chart) or json.")]
    = "markdown",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write here (default: stdout).")] = None,
) -> None:
    """Write what happened in a migration: phases with their times, figures, verification,
    the cut-over's write pause, commands translated or dropped; the HTML page charts lag and
    throughput over time with the write pause shaded. Reads the state folder only (no
    server is contacted); URLs are masked."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", f"use {', '.join(FORMATS)}")
    from migrate.report import timeline
    from migrate.report.run_record import gather

    data = gather(state)
    text = json.dumps(data, indent=2, default=str) + "\n" if fmt == "json" else \
        timeline.html(data) if fmt == "html" else timeline.markdown(data)
    if output is None:
        typer.echo(text, nl=False)
        return
    _write(output, text)
    err.print(f"report: {output}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
