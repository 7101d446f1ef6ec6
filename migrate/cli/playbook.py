"""``kvmigrate playbook``: list, show and run YAML runbooks (dry-run: a change-review report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from migrate.cli.console import err, out
from migrate.errors import UsageError
from migrate.orchestrate import playbook as pb
from migrate.orchestrate.runner import PlaybookRunner
from migrate.report import change_review

app = typer.Typer(help="YAML runbooks: ordered steps with variables and gates.",
                  no_args_is_help=True)


@app.command("list")
def list_cmd() -> None:
    """List the playbooks (./playbooks first, then the built-in ones)."""
    table = Table("name", "steps", "description")
    for path in pb.available():
        book = pb.load(str(path))
        table.add_row(book.name, str(len(book.steps)), " ".join(book.description.split()))
    out.print(table)


@app.command("show")
def show_cmd(name: Annotated[str, typer.Argument(
    metavar="NAME|FILE", help="Playbook name or YAML file.")]) -> None:
    """Show a playbook's variables and steps."""
    book = pb.load(name)
    out.print(f"{book.name}: {' '.join(book.description.split())}", markup=False)
    out.print(f"file: {book.path}", markup=False)
    out.print("variables:", markup=False)
    for var in book.vars.values():
        flag = "required" if var.required else f"default {var.default!r}" if var.default \
            is not None else "optional"
        out.print(f"  {var.name} ({flag}): {var.description}", markup=False)
    out.print("steps:", markup=False)
    for i, step in enumerate(book.steps, 1):
        when = f" [when {step.when}]" if step.when else ""
        params = ", ".join(f"{k}={v}" for k, v in step.params.items())
        out.print(f"  {i}. {step.name}: {step.kind} {step.op}{when} {params}".rstrip(),
                  markup=False)


@app.command("run")
def run_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME|FILE", help="Playbook name or YAML file.")],
    var: Annotated[list[str] | None, typer.Option("--var", metavar="NAME=VALUE",
        help="NAME=VALUE (repeatable).")]
    = None,
    vars_file: Annotated[Path | None, typer.Option("--vars", metavar="FILE",
        help="YAML file of variables.")]
    = None,
    state: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Ledger folder of this run (default "
                                                    "STATE-var/playbook).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Change nothing; render the "
                                                           "change-review report.")] = False,
    resume: Annotated[bool, typer.Option(help="Skip the steps a previous run finished.")]
    = False,
    report: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Write the Markdown report here (and "
                                                     "JSON beside it, .json).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every approval gate.")]
    = False,
) -> None:
    """Run a playbook step by step; --dry-run renders a change-review report instead."""
    if report is not None and (report.is_dir() or report.with_suffix(".json").is_dir()):
        raise UsageError(f"--report {report} is a directory",
                         "give a file name, e.g. --report review.md")
    book = pb.load(name)
    values = pb.resolve_vars(book, pb.parse_var_args(var or [], vars_file))
    state_dir = state or Path(values.get("state") or f".kvmigrate/{book.name}") / "playbook"

    def approve(message: str) -> bool:
        if yes:
            err.print(f"approved (--yes): {message}", markup=False)
            return True
        if not sys.stdin.isatty():
            err.print(f"needs approval: {message} (rerun with --yes, or at a terminal)",
                      markup=False)
            return False
        return typer.confirm(message, default=False, err=True)

    runner = PlaybookRunner(book, values, state_dir=state_dir, dry_run=dry_run, resume=resume,
                            notify=lambda m: err.print(m, markup=False), approve=approve)
    try:
        result = runner.run()
    finally:
        if report is not None or dry_run:
            data = change_review.build(runner.result, values)
            text = change_review.markdown(data)
            if report is not None:
                report.parent.mkdir(parents=True, exist_ok=True)
                report.write_text(text)
                report.with_suffix(".json").write_text(json.dumps(data, indent=2,
                                                                  default=str) + "\n")
                err.print(f"report: {report} and {report.with_suffix('.json')}", markup=False)
            else:
                out.print(text, markup=False)
    if not result.ok:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="playbook")
