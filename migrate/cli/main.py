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
from migrate.cli import helpfmt
from migrate.cli.console import err
from migrate.cli.stopping import cancel_watchdog
from migrate.errors import ExitCode, KvmError
from migrate.state.disk import DISK_ERRORS

ORDER = ["preflight", "convert_config", "rdb", "copy", "sync", "verify", "cutover", "rollback",
         "report", "playbook", "lab"]

app = typer.Typer(
    name="kvmigrate",
    help="Move a Redis deployment to Valkey or Dragonfly safely: find what would break, "
         "copy the data, prove the copy, cut over.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command_modules() -> list[str]:
    """The modules of :mod:`migrate.cli` that may define commands, in ``--help`` order."""
    names = [m.name for m in pkgutil.iter_modules(cli_package.__path__)
             if m.name not in ("main", "console", "entry", "index")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return names


def register_module(target: typer.Typer, name: str) -> None:
    module = importlib.import_module(f"migrate.cli.{name}")
    register = getattr(module, "register", None)
    if register is not None:
        register(target)


_registered: list[str] = []


def register_all() -> typer.Typer:
    """Every command on :data:`app` (the docs generator walks them all)."""
    if _registered != ["*"]:
        app.registered_commands.clear()
        app.registered_groups.clear()
        for name in command_modules():
            register_module(app, name)
        helpfmt.reflow_app(app)
        _registered[:] = ["*"]
    return app


def _placeholder() -> None:  # pragma: no cover - listed in --help, never run
    raise AssertionError("a command listed from the index ran")


def _register_for(args: list[str]) -> None:
    """Load only what ``args`` need: the module of the command named (its engines come with
    it), or, for the top-level help, each command's name and help from
    :mod:`migrate.cli.index` (generated from the commands by scripts/gen_docs.py), so
    ``kvmigrate --help`` imports no command. A name not in the index loads every command
    (for the parser's "no such command" and its suggestion)."""
    from migrate.cli.index import COMMANDS

    name = next((a for a in args if not a.startswith("-")), None)
    if name is not None and {"-h", "--help"} & set(args[:args.index(name)]):
        name = None  # `kvmigrate --help sync`: the top-level help
    modules = {command: module for command, module, _, _ in COMMANDS}
    if name is None:
        for command, _, group, text in COMMANDS:
            if group:
                app.add_typer(typer.Typer(help=text), name=command)
            else:
                app.command(command, help=text)(_placeholder)
    elif name in modules:
        register_module(app, modules[name])
        helpfmt.reflow_app(app)
    else:
        register_all()


def _version(value: bool) -> None:
    if value:
        from migrate import __version__

        typer.echo(f"kvmigrate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Move a Redis deployment to Valkey or Dragonfly safely."""



def _fail(message: str, code: int, hint: str | None = None) -> NoReturn:
    """One line; URLs in the message are masked (hints hold placeholders, not secrets)."""
    from migrate.endpoint import mask_urls_in_text

    text = mask_urls_in_text(message) + (f" ({hint})" if hint else "")
    err.print(f"kvmigrate: error: {text}", markup=False)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every error, ours or the argument parser's, becomes one line
    ``kvmigrate: error: ...`` and its exit code; never a traceback (KVMIGRATE_DEBUG=1 shows
    one for an unexpected error)."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args or (len(args) <= 2 and "--version" not in args):
        helpfmt.install()  # help may be shown
    try:
        _register_for(args)
        code = app(args=args, prog_name="kvmigrate", standalone_mode=False)
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
        message = " ".join(exc.format_message().replace("Value error, ", "").split())
        _fail(f"{message} (see `{where} --help`)", exc.exit_code)  # one line: no "Choose from:\n"
    except Exception as exc:  # a bug: one line, and the traceback only when asked for
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:  # not a bug: the disk
            # (the state folder's own writes are said by migrate.state.disk, with the path)
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
