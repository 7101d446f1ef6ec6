"""``kvmigrate``: the entry point. Turns :class:`KvmError` into one line and an exit code.

Each module in :mod:`migrate.cli` that defines ``register(app)`` adds its commands; ``ORDER``
fixes where they appear in ``--help``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import NoReturn

import typer

try:  # Typer vendors Click from 0.2x on; older Typer releases use Click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException  # type: ignore[no-redef]

import migrate.cli as cli_package
from migrate import __version__
from migrate.cli.console import err
from migrate.cli.stopping import cancel_watchdog
from migrate.endpoint import mask_urls_in_text
from migrate.errors import ExitCode, KvmError
from migrate.statedisk import DISK_ERRORS

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
             if m.name not in ("main", "console", "entry")]
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


def _fail(message: str, code: int, hint: str | None = None) -> NoReturn:
    """One line; URLs in the message are masked (hints hold placeholders, not secrets)."""
    text = mask_urls_in_text(message) + (f" ({hint})" if hint else "")
    err.print(f"kvmigrate: error: {text}", markup=False)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every error, ours or the argument parser's, becomes one line
    ``kvmigrate: error: ...`` and its exit code; never a traceback (KVMIGRATE_DEBUG=1 shows
    one for an unexpected error)."""
    try:
        code = app(args=argv, prog_name="kvmigrate", standalone_mode=False)
    except KvmError as exc:
        _fail(exc.message, int(exc.exit_code), exc.hint)
    except (KeyboardInterrupt, typer.Abort):
        cancel_watchdog()
        err.print("kvmigrate: interrupted", markup=False)
        sys.exit(ExitCode.INTERRUPTED)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as before
            exc.show()
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "kvmigrate"
        _fail(f"{exc.format_message().replace('Value error, ', '')} (see `{where} --help`)",
              exc.exit_code)
    except Exception as exc:  # a bug: one line, and the traceback only when asked for
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:  # not a bug: the disk
            # (the state folder's own writes are said by migrate.statedisk, with the path)
            where = f" {exc.filename}" if exc.filename else ""
            _fail(f"cannot write{where}: {exc.strerror}", ExitCode.FAILED,
                  "make room on that filesystem (or give --state a folder elsewhere), then "
                  "run again with --resume")
        if os.environ.get("KVMIGRATE_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (a kvmigrate bug: please report it; "
              "KVMIGRATE_DEBUG=1 shows the traceback)", ExitCode.FAILED)
    if code == ExitCode.INTERRUPTED:  # Typer returns this for an interrupt it caught
        cancel_watchdog()
        err.print("kvmigrate: interrupted", markup=False)
    sys.exit(code if isinstance(code, int) else 0)
