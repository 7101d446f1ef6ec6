"""Every ``--help`` reads well in an 80-column terminal (issue 18): no line wider than the
terminal, nothing cut with ``…`` (flag names, metavars, env var names, defaults), one metavar
vocabulary, docstrings re-flowed rather than broken where the source file broke them."""

from __future__ import annotations

import re

import pytest
import typer

from migrate.cli import helpfmt
from migrate.cli.main import app
from tests.helpers import run_cli

try:
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click  # type: ignore[no-redef]

VOCABULARY = {"URL", "FILE", "DIR", "PATH", "OUT", "N", "MS", "S", "BYTES", "VERSION", "MODE",
              "NAME", "NAME|FILE", "NAME=VALUE", "SPEC", "PORT", "PASSWORD", "PROFILE",
              "PATTERN", "HOST:PORT", "[HOST:]PORT", "SRC:DST,...", "CLASS,...",
              "ssh://USER@HOST[:PORT]/PATH"}
CHOICES = re.compile(r"^[a-z0-9-]+(\|[a-z0-9-]+)+$")


def _commands() -> list[tuple[list[str], click.Command]]:
    found = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        found.append((path, cmd))
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "-")
def test_help_fits_80_columns_and_cuts_nothing(path: list[str]) -> None:
    res = run_cli(*path, "--help", env={"COLUMNS": "80"})
    assert res.code == 0, res.output
    text = res.stdout
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, "\n".join(wide)
    assert "…" not in text
    assert not re.search(r"<(bool|str|int|float|path|list\[\w+\])>", text), text
    cmd = dict((tuple(p), c) for p, c in COMMANDS)[tuple(path)]
    for param in cmd.params:
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("--"):
                assert re.search(rf"{re.escape(opt)}(\W|$)", text, re.M), opt
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str) and getattr(param, "show_envvar", False):
            assert envvar in text, envvar
    flat = " ".join(text.split())
    for param in cmd.params:  # defaults whole, even when the line breaks inside "[default: X]"
        default = param.default
        if isinstance(default, int | float | str) and not isinstance(default, bool) \
                and default != "" and getattr(param, "show_default", True) is not False:
            assert f"default: {default}" in flat.replace("[default: ", "default: ") or \
                str(default) in flat, (param.name, default)


def test_every_metavar_is_in_the_vocabulary() -> None:
    bad = []
    for path, cmd in COMMANDS:
        ctx = click.Context(cmd, info_name=" ".join(path))
        for param in cmd.params:
            shown = helpfmt.metavar(param, ctx)
            if shown and shown not in VOCABULARY and not CHOICES.match(shown):
                bad.append(f"kvmigrate {' '.join(path)} {param.opts[0]}: {shown}")
    assert not bad, "\n".join(bad)


def test_the_long_names_of_issue_18_are_whole_at_80_columns() -> None:
    sync = run_cli("sync", "--help", env={"COLUMNS": "80"}).stdout
    assert "--set-notify-keyspace-events" in sync
    assert "KVMIGRATE_SOURCE_URL" in sync and "redis://[user:pw@]host:port" in sync
    rollback = run_cli("rollback", "--help", env={"COLUMNS": "80"}).stdout
    assert "--path auto|native|logical|window" in rollback
    assert "Examples:" in rollback and "$ kvmigrate rollback --state migration" in rollback


def test_docstrings_are_reflowed_not_broken_where_the_source_broke_them() -> None:
    # copy's docstring breaks "typed" / "commands otherwise" in the source file; at 200
    # columns a re-flowed paragraph has no line ending there
    text = run_cli("copy", "--help", env={"COLUMNS": "200"}).stdout
    assert "when the target reads their encoding" in text
    assert "typed commands otherwise" in text
