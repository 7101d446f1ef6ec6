"""A parsed redis.conf: every line in order (comments kept), includes inlined where they stand.

Parsing follows Redis (see :mod:`.grammar`, :mod:`.redis_rules`); what Redis would refuse at
startup raises :class:`ConfigError` as ``FILE:LINE: what is wrong`` (exit 2).

``include`` paths: Redis opens them with ``fopen()``, so a relative path is relative to the
*working directory of redis-server*, not to the including file. kvmigrate does the same,
relative to ``include_base`` (default: the current directory); pass the directory the server
is started from. Wildcards are expanded in alphabetical order, and a pattern that matches
nothing is ignored, as Redis 7 does. Redis does not detect include loops (it recurses until
it fails); kvmigrate refuses them.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from migrate.convert import redis_rules
from migrate.convert.grammar import GrammarError, split_args
from migrate.errors import UsageError

MAX_FILE_BYTES = 64 * 1024 * 1024


class ConfigError(UsageError):
    """Malformed or unreadable input: ``FILE:LINE: what is wrong``."""


@dataclass
class Directive:
    name: str  # lower-case, as Redis compares names
    args: list[str]
    file: str
    line: int
    live: bool = False  # read from CONFIG GET of a running server, not from a file

    @property
    def where(self) -> str:
        if self.live:
            return f"{self.file} (CONFIG GET {self.name})"
        return f"{self.file}:{self.line}"

    def masked_args(self) -> list[str]:
        return redis_rules.mask_args(self.name, self.args)


@dataclass
class Line:
    """One physical line: ``kind`` is comment, blank, directive, include-start or include-end."""

    kind: str
    text: str
    file: str
    line: int
    directive: Directive | None = None


@dataclass
class ConfigDocument:
    origin: str  # a path, or a masked server URL
    lines: list[Line] = field(default_factory=list)
    from_server: bool = False
    server_version: str = ""
    renamed_away: dict[str, str] = field(default_factory=dict)  # command -> where renamed

    def directives(self) -> Iterator[Directive]:
        for line in self.lines:
            if line.directive is not None and line.kind == "directive":
                yield line.directive


def parse_file(path: str | Path, include_base: str | Path | None = None) -> ConfigDocument:
    shown = str(path)
    doc = ConfigDocument(origin=shown)
    base = Path(include_base) if include_base is not None else Path.cwd()
    _parse_into(doc, Path(path), shown, base, stack=[], where=None)
    return doc


def parse_text(text: str, name: str = "<text>") -> ConfigDocument:
    """Parse config text (no includes resolved relative to anything but the cwd)."""
    doc = ConfigDocument(origin=name)
    _parse_lines(doc, text, name, Path.cwd(), stack=[])
    return doc


def _read(path: Path, shown: str, where: str | None) -> str:
    prefix = f"{where}: " if where else ""
    try:
        if path.is_dir():
            raise ConfigError(f"{prefix}{shown}: is a directory, not a config file")
        data = path.read_bytes()[:MAX_FILE_BYTES + 1]
    except FileNotFoundError:
        what = "included file" if where else "config file"
        raise ConfigError(f"{prefix}{shown}: no such {what}") from None
    except OSError as exc:
        raise ConfigError(f"{prefix}{shown}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_FILE_BYTES} bytes: not a config file")
    if b"\0" in data:
        lineno = data[:data.index(b"\0")].count(b"\n") + 1
        raise ConfigError(f"{shown}:{lineno}: binary data (a NUL byte): not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{shown}:{lineno}: not UTF-8 text: not a config file") from None


def _parse_into(doc: ConfigDocument, path: Path, shown: str, base: Path, stack: list[str],
                where: str | None) -> None:
    real = os.path.realpath(path)
    if real in stack:
        chain = " -> ".join([*stack[stack.index(real):], real])
        raise ConfigError(f"{where}: include loop: {chain}")
    text = _read(path, shown, where)
    _parse_lines(doc, text, shown, base, [*stack, real])


def _parse_lines(doc: ConfigDocument, text: str, shown: str, base: Path,
                 stack: list[str]) -> None:
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()  # the newline at the end of the file
    for number, raw in enumerate(physical, start=1):
        stripped = raw.strip(" \t\r\n")
        if not stripped:
            doc.lines.append(Line("blank", raw.rstrip("\r"), shown, number))
            continue
        if stripped.startswith("#"):
            doc.lines.append(Line("comment", raw.rstrip("\r"), shown, number))
            continue
        where = f"{shown}:{number}"
        try:
            argv = split_args(stripped)
        except GrammarError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if not argv:
            doc.lines.append(Line("blank", raw.rstrip("\r"), shown, number))
            continue
        name = argv[0].lower()
        args = redis_rules.normalize_args(name, argv[1:])
        try:
            redis_rules.check(name, args)
        except GrammarError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        directive = Directive(name, args, shown, number)
        if name == "rename-command":
            _check_rename(doc, directive)
        if name == "include":
            doc.lines.append(Line("include-start", raw.rstrip("\r"), shown, number, directive))
            _include(doc, args[0], where, base, stack)
            doc.lines.append(Line("include-end", raw.rstrip("\r"), shown, number, directive))
            continue
        doc.lines.append(Line("directive", raw.rstrip("\r"), shown, number, directive))


def _check_rename(doc: ConfigDocument, d: Directive) -> None:
    """Redis refuses to rename a command that an earlier line already renamed away."""
    old, new = d.args[0].lower(), d.args[1].lower()
    gone = doc.renamed_away
    if old in gone:
        raise ConfigError(f"{d.where}: rename-command {d.args[0]}: already renamed at "
                          f"{gone[old]} (Redis: 'No such command in rename-command')")
    gone[old] = d.where
    gone.pop(new, None)


def _include(doc: ConfigDocument, pattern: str, where: str, base: Path,
             stack: list[str]) -> None:
    target = Path(pattern)
    full = target if target.is_absolute() else base / target
    if glob.has_magic(pattern):
        for match in sorted(glob.glob(str(full))):
            _parse_into(doc, Path(match), match, base, stack, where)
        return
    _parse_into(doc, full, pattern, base, stack, where)
