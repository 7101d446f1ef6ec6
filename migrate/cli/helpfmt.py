"""``--help`` that reads well in an 80-column terminal.

Typer lays every option out as one table row (flags, metavar, help side by side); at 80
columns the row is wider than the screen and Rich cuts flag names and metavars with ``…``.
Here each option takes a line of its own (flags and metavar, never cut) with its help, env
var and default wrapped underneath, indented. Docstrings are re-flowed (a line break inside
a paragraph is a space) so the terminal, not the source file, decides where lines end.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.text import Text
    from typer._click import Context, Parameter

HELP_INDENT = 4


def reflow(text: str | None) -> str | None:
    """Join the lines of each paragraph; keep paragraphs, and ``\\b`` blocks as written."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else re.sub(r"\s*\n\s*", " ", p.strip())
                       for p in paragraphs)


# Shown at the end of a command's --help; each line fits 80 columns.
EXAMPLES = {
    "preflight": ["kvmigrate preflight --source redis://old:6379 --to valkey",
                  "kvmigrate preflight --source redis://old:6379 --to dragonfly "
                  "--format markdown -o report.md"],
    "convert-config": ["kvmigrate convert-config /etc/redis/redis.conf -o valkey.conf",
                       "kvmigrate convert-config --from-server redis://old:6379 --to dragonfly"],
    "copy": ["kvmigrate copy --from-rdb dump.rdb --target redis://new:6379",
             "kvmigrate copy --from-server redis://old:6379 --target redis://new:6379",
             "kvmigrate copy --from-rdb dump.rdb --to valkey --to-rdb valkey.rdb"],
    "sync": ["kvmigrate sync --source redis://old:6379 --target redis://new:6379",
             "kvmigrate sync --source redis://old:6379 --target redis://new:6379 --follow"],
    "verify": ["kvmigrate verify --source redis://old:6379 --target redis://new:6379",
               "kvmigrate verify --source redis://old:6379 --target redis://new:6379 --full"],
    "cutover": ["kvmigrate cutover --state migration --dry-run",
                "kvmigrate cutover --state migration --max-pause-ms 1000 --yes"],
    "rollback": ["kvmigrate rollback --state migration --dry-run",
                 "kvmigrate rollback --state migration --yes"],
    "rdb inspect": ["kvmigrate rdb inspect dump.rdb",
                    "kvmigrate rdb inspect dump.rdb --to valkey --target-version 8.1.1"],
    "report": ["kvmigrate report --state migration --format html -o report.html"],
    "playbook run": ["kvmigrate playbook run redis-to-valkey-live --dry-run"],
    "lab up": ["kvmigrate lab up old --server redis-7.0",
               "kvmigrate lab up new --server valkey-8.1 --port 7001"],
    "lab seed": ["kvmigrate lab seed old --keys 100000 --profile mixed"],
}


def examples(path: str) -> str | None:
    lines = EXAMPLES.get(path)
    return "Examples:\n" + "\n".join(f"$ {line}" for line in lines) if lines else None


def first_sentence(text: str) -> str:
    """What the list of commands shows: the help's first sentence."""
    paragraph = text.split("\n\n", 1)[0]
    head, dot, _ = paragraph.partition(". ")
    return head + dot.strip()


def reflow_app(app: typer.Typer, path: str = "") -> None:
    """Re-flow the help of every command and group registered on ``app`` (recursively) and
    give the commands in :data:`EXAMPLES` their examples as an epilog."""
    app.info.help = reflow(app.info.help) if isinstance(app.info.help, str) else app.info.help
    for command in app.registered_commands:
        if isinstance(command.help, str):
            command.help = reflow(command.help)
        elif command.callback is not None and command.callback.__doc__:
            command.callback.__doc__ = reflow(command.callback.__doc__)
        text = command.help if isinstance(command.help, str) else (
            command.callback.__doc__ if command.callback is not None else None)
        if command.short_help is None and text:
            command.short_help = first_sentence(text)
        name = command.name or (command.callback.__name__ if command.callback else "")
        if command.epilog is None:
            command.epilog = examples(f"{path} {name}".strip())
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = reflow(group.help)
        if group.typer_instance is not None:
            reflow_app(group.typer_instance, f"{path} {group.name}".strip())


def metavar(param: Parameter, ctx: Context) -> str:
    """What an option takes: its declared metavar, a choice list, or nothing for a flag."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar is not None:
        return param.metavar
    shown = str(param.display_type_rich(ctx) or "") if hasattr(param, "display_type_rich") \
        else ""
    if "|" in shown:  # a choice: its values
        return shown.strip("<>")
    return shown


def _flags(param: Parameter, ctx: Context) -> Text:
    from rich.text import Text
    from typer import rich_utils

    line = Text()
    if param.required:
        line.append("* ", style=rich_utils.STYLE_REQUIRED_SHORT)
    if param.param_type_name == "argument":
        name = param.metavar or (param.name or "").upper()
        if getattr(param, "nargs", 1) != 1:
            name += "..."
        line.append(name, style=rich_utils.STYLE_OPTION)
        return line
    opts = sorted(param.opts, key=lambda o: (not o.startswith("--"), o))
    line.append(", ".join(opts), style=rich_utils.STYLE_OPTION)
    if param.secondary_opts:
        line.append(" / " + ", ".join(param.secondary_opts),
                    style=rich_utils.STYLE_NEGATIVE_OPTION)
    taken = metavar(param, ctx)
    if taken:
        line.append(f" {taken}", style=rich_utils.STYLE_TYPES)
    return line


def _help(param: Parameter, ctx: Context, markup_mode: Any) -> Text:
    """The option's help, env var, default and required mark as one wrapped paragraph."""
    from rich.text import Text
    from typer import rich_utils

    columns = rich_utils._get_parameter_help(param=param, ctx=ctx, markup_mode=markup_mode)
    items = list(columns.renderables)
    text = Text()
    help_value = getattr(param, "help", None)
    if help_value:  # as written: Rich markup would eat "[user:pw@]"
        text.append(" ".join(help_value.split()), style=rich_utils.STYLE_OPTION_HELP)
        items = items[1:]
    for item in items:
        if isinstance(item, Text) and item.plain.strip():
            if text.plain:
                text.append(" ")
            text.append_text(item)
    return text


def _print_options_panel(*, name: str, params: list[Any], ctx: Context,
                         markup_mode: Any, console: Any) -> None:
    from rich.console import Group, RenderableType
    from rich.padding import Padding
    from rich.panel import Panel
    from typer import rich_utils

    if not params:
        return
    rows: list[RenderableType] = []
    for param in params:
        rows.append(_flags(param, ctx))
        help_text = _help(param, ctx, markup_mode)
        if help_text.plain:
            rows.append(Padding(help_text, (0, 0, 0, HELP_INDENT)))
    console.print(Panel(Group(*rows), border_style=rich_utils.STYLE_OPTIONS_PANEL_BORDER,
                        title=name, title_align=rich_utils.ALIGN_OPTIONS_PANEL))


def install() -> None:
    """Use this layout for every ``--help`` of the process (loaded only when help may be
    shown: Typer's Rich layer costs ~0.1 s at start)."""
    from migrate.cli.lazyrich import defer

    defer()  # Rich's Markdown and Traceback: loaded only if used
    from typer import rich_utils

    rich_utils._print_options_panel = _print_options_panel
