"""``kvmigrate``: the entry point. Turns :class:`KvmError` into one line and an exit code."""

from __future__ import annotations

import sys

import typer

from migrate import __version__
from migrate.cli import lab
from migrate.cli.console import err
from migrate.errors import ExitCode, KvmError

app = typer.Typer(
    name="kvmigrate",
    help="Move a Redis deployment to Valkey or Dragonfly safely: find what would break, "
         "copy the data, prove the copy, cut over.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(lab.app, name="lab")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kvmigrate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Move a Redis deployment to Valkey or Dragonfly safely."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; Typer turns usage errors into exit 2, this turns ours into their codes."""
    try:
        app(args=argv, prog_name="kvmigrate")
    except KvmError as exc:
        err.print(f"kvmigrate: error: {exc.one_line()}", markup=False)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        err.print("kvmigrate: interrupted", markup=False)
        sys.exit(ExitCode.INTERRUPTED)
