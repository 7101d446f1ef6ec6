"""``kvmigrate convert-config``: redis.conf (or a live Redis) to valkey.conf or a Dragonfly
flagfile, with the fate of every directive."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from migrate.cli.console import err, print_json
from migrate.convert import TARGETS, convert, load
from migrate.convert.redis_rules import is_sensitive
from migrate.convert.result import Conversion
from migrate.errors import UsageError
from migrate.model import Severity

FORMATS = ("text", "json")


def register(app: typer.Typer) -> None:
    @app.command("convert-config")
    def convert_config(
        to: Annotated[str, typer.Option("--to", metavar="valkey|dragonfly",
                                        help="Target: valkey or dragonfly.",
                                        show_default=False)],
        file: Annotated[Path | None, typer.Argument(
            metavar="FILE", help="The redis.conf to convert.",
                                                    show_default=False)] = None,
        output: Annotated[Path | None, typer.Option(
            "-o", "--output", metavar="FILE",
            help="Write the converted file here (default: stdout; with "
                                   "--format json: not written).")] = None,
        fmt: Annotated[str, typer.Option(
            "--format", metavar="text|json",
            help="text: the converted file, summary on stderr; json: every directive's fate "
                 "on stdout.")] = "text",
        target_version: Annotated[str | None, typer.Option(
            "--target-version", metavar="VERSION",
            help="Target server version (Valkey: 8.0, 8.1, 9.1). Default: a file every "
                 "supported version accepts (what Valkey 8.0 takes).")] = None,
        from_server: Annotated[str | None, typer.Option(
            "--from-server", metavar="URL",
            help="Read the live settings of a running Redis (CONFIG GET *) instead of a "
                 "FILE.")] = None,
        include_base: Annotated[Path | None, typer.Option(
            "--include-base", metavar="DIR",
            help="Directory relative 'include' paths are resolved from "
                                   "(Redis: the server's working directory; default: the "
                                   "current directory).")] = None,
    ) -> None:
        """Convert a Redis config to Valkey or Dragonfly and report what happened to every
        directive. Exit 0 converted, 1 converted but a blocker (a setting with no
        equivalent), 2 unreadable or malformed input (nothing written)."""
        if to not in TARGETS:
            raise UsageError(f"--to {to!r}: choose valkey or dragonfly")
        if fmt not in FORMATS:
            raise UsageError(f"--format {fmt!r}: choose text or json")
        if file is None and from_server is None:
            raise UsageError("give a config FILE or --from-server URL")
        if file is not None and from_server is not None:
            raise UsageError("give a config FILE or --from-server URL, not both")
        doc = load(file, from_server=from_server, include_base=include_base)
        result = convert(doc, to, target_version)
        secret = any(is_sensitive(d.name) for d in doc.directives())
        if output is not None:
            _write_atomic(output, result.text, private=secret)
        if fmt == "json":
            payload = result.to_dict()
            payload["output"] = str(output) if output is not None else None
            print_json(payload)
        else:
            if output is None:
                sys.stdout.write(result.text)
                sys.stdout.flush()
            _summary(result, output, secret)
        raise typer.Exit(int(result.exit_code))


def _write_atomic(path: Path, text: str, private: bool) -> None:
    """Write the whole file or nothing: a temporary file in the same directory, renamed.

    A path that exists and is not a regular file (``/dev/stdout``, a FIFO) is written to as it
    is: renaming over it would replace the device node."""
    if path.is_dir():
        raise UsageError(f"-o {path}: is a directory")
    if path.exists() and not path.is_file():
        with open(path, "w") as handle:
            handle.write(text)
        return
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}",
                         "give -o a path in an existing, writable directory") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _summary(result: Conversion, output: Path | None, secret: bool) -> None:
    counts = result.counts()
    shown = ", ".join(f"{counts[k]} {k}" for k in ("mapped", "renamed", "changed", "dropped",
                                                   "unsupported"))
    where = f" -> {output}" if output is not None else ""
    target = f"{result.target} {result.target_version}".strip()
    err.print(f"converted {result.source} for {target}{where}: "
              f"{shown} ({counts['overridden']} overridden by a later line)", markup=False)
    if result.valid_for:
        err.print(f"the converted file is valid {result.valid_for}", markup=False)
    if secret and output is not None:
        err.print(f"{output} holds passwords from the source: written with mode 0600",
                  markup=False)
    order = [Severity.BLOCKER, Severity.WARNING, Severity.INFO]
    for severity in order:
        for f in (x for x in result.findings if x.severity is severity):
            err.print(f"  [{severity.value}] {f.title}", markup=False)
            if severity is not Severity.INFO and f.remediation:
                err.print(f"      remedy: {f.remediation}", markup=False)
    if result.blocked:
        err.print("blocker(s) above: the target cannot do what this config asks (exit 1)",
                  markup=False)
