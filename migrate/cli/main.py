"""``kvmigrate``: the entry point. Turns :class:`KvmError` into one line and an exit code.

Each module in :mod:`migrate.cli` that defines ``register(app)`` adds its commands; ``ORDER``
fixes where they appear in ``--help``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

import migrate.cli as cli_package
from migrate import __version__
from migrate.cli.console import err
from migrate.errors import ExitCode, KvmError

ORDER = ["preflight", "convert_config", "rdb", "copy", "sync", "verify", "cutover", "rollback",
         "playbook", "lab"]

app = typer.Typer(
    name="kvmigrate",
    help="Move a Redis deployment to Valkey or Dragonfly safely: find what would break, "
         "copy the data, prove the copy, cut over.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _register_commands() -> None:
    names = [m.name for m in pkgutil.iter_modules(cli_package.__path__)
             if m.name not in ("main", "console")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        module = importlib.import_module(f"migrate.cli.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


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


_register_commands()


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
