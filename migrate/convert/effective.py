"""What a config means once Redis has read it all: the last line wins, except for directives
that add up (``save``, ``client-output-buffer-limit`` per class, ``rename-command``, ...).

Sources: redis src/config.c (``setConfigSaveOption`` appends save points after the first
``save`` line of the file and ``save ""`` clears them; ``client-output-buffer-limit`` sets each
class it names; ``rename-command``, ``loadmodule`` and ``user`` are queued in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate.convert.document import ConfigDocument, Directive
from migrate.convert.redis_rules import ACCUMULATE


@dataclass
class Setting:
    """The effective value of one directive and the lines it came from (the last decides)."""

    name: str
    args: list[str]
    sources: list[Directive] = field(default_factory=list)
    overridden: list[Directive] = field(default_factory=list)  # earlier lines that lost

    @property
    def last(self) -> Directive:
        return self.sources[-1]


def resolve(doc: ConfigDocument) -> dict[str, Setting]:
    """Effective settings in order of first appearance; ``include`` is already inlined."""
    settings: dict[str, Setting] = {}
    obuf: dict[str, list[str]] = {}
    owner: dict[str, Directive] = {}  # output-buffer class -> the line that set it last
    for d in doc.directives():
        setting = settings.get(d.name)
        if setting is None:
            setting = settings[d.name] = Setting(d.name, [])
        if d.name not in ACCUMULATE:
            setting.overridden.extend(setting.sources)
            setting.sources = [d]
            setting.args = list(d.args)
            continue
        if d.name == "save" and d.args == [""]:
            # save "" clears the points set so far: those lines no longer count.
            setting.overridden.extend(setting.sources)
            setting.sources = [d]
            setting.args = []
            continue
        setting.sources.append(d)
        if d.name == "save":
            setting.args.extend(d.args)
        elif d.name == "client-output-buffer-limit":
            for i in range(0, len(d.args), 4):
                cls = d.args[i].lower()
                obuf[_obuf_class(cls)] = d.args[i + 1:i + 4]
                owner[_obuf_class(cls)] = d
            setting.args = [x for cls, vals in obuf.items() for x in (cls, *vals)]
            still = set(map(id, owner.values()))
            lost = [src for src in setting.sources if id(src) not in still]
            setting.overridden.extend(lost)
            setting.sources = [src for src in setting.sources if id(src) in still]
        else:
            # rename-command, loadmodule, user, sentinel: each line is one entry, kept whole.
            setting.args.append("\0".join(d.args))
    return settings


def _obuf_class(cls: str) -> str:
    return "replica" if cls == "slave" else cls


def entries(setting: Setting) -> list[list[str]]:
    """For a queued directive (rename-command, user ...), each line's arguments."""
    return [entry.split("\0") for entry in setting.args]
