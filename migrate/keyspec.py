"""Where a command's keys are, as the servers themselves describe it: the key specifications
of ``COMMAND INFO`` (Redis 7+, Valkey), captured from every lab server version into
checks/data/key_specs.json (scripts/gen_key_specs.py). One table for everything that needs a
command's keys (the cluster router, the written-keys sample), instead of hand-kept lists.

A spec is a begin search (``index`` i: at argv[i]; ``keyword`` K from s: after the first K
found searching from argv[s], backwards when s < 0) and a find (``range`` lastkey/step/limit:
keys from there to begin+lastkey, -1 the last argument; ``keynum`` idx/first/step: the number
of keys is argv[begin+idx], the keys start at begin+first).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

DATA_FILE = Path(__file__).resolve().parent.parent / "checks" / "data" / "key_specs.json"
# every command (and "container|subcommand") each lab server flags ``write``
WRITE_COMMANDS_FILE = DATA_FILE.with_name("write_commands.json")

Arg = bytes | str | int | float
# [begin type, begin a, begin b, find type, find a, find b, find c, incomplete (0/1)]
Spec = list[Any]


def _b(x: Arg) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


def _d(x: object) -> object:
    return x.decode() if isinstance(x, bytes) else x


def _spec(raw: dict) -> Spec:
    raw = {_d(k): v for k, v in raw.items()}
    begin = {_d(k): v for k, v in raw["begin_search"].items()}
    find = {_d(k): v for k, v in raw["find_keys"].items()}
    bspec = {_d(k): _d(v) for k, v in (begin.get("spec") or {}).items()}
    fspec = {_d(k): v for k, v in (find.get("spec") or {}).items()}
    btype, ftype = _d(begin["type"]), _d(find["type"])
    if btype == "index":
        b = ["index", bspec["index"], 0]
    elif btype == "keyword":
        b = ["keyword", bspec["keyword"], bspec["startfrom"]]
    else:
        b = ["unknown", 0, 0]
    if ftype == "range":
        f = ["range", fspec["lastkey"], fspec["keystep"], fspec["limit"]]
    elif ftype == "keynum":
        f = ["keynum", fspec["keynumidx"], fspec["firstkey"], fspec["keystep"]]
    else:
        f = ["unknown", 0, 0, 0]
    flags = {_d(x) for x in raw.get("flags") or []}
    return b + f + [1 if "incomplete" in flags else 0]


def specs_of_server(client: Any) -> dict[str, list[Spec]]:
    """{command or "command|sub": [spec, ...]} from a live server's COMMAND INFO."""
    from migrate.endpoint import raw_command

    out: dict[str, list[Spec]] = {}

    def walk(entry: list) -> None:
        name = _d(entry[0])
        specs = entry[8] if len(entry) > 8 else []
        out[str(name).lower()] = [_spec(s if isinstance(s, dict) else dict(
            zip(s[::2], s[1::2], strict=True))) for s in specs]
        for sub in (entry[9] if len(entry) > 9 else []) or []:
            walk(sub)

    for entry in cast(list[Any], raw_command(client, "COMMAND", "INFO")):
        if entry:
            walk(entry)
    return out


def write_commands_of_server(client: Any) -> list[str]:
    """The commands (``name`` or ``container|sub``) a live server's COMMAND INFO flags
    ``write``, sorted."""
    from migrate.endpoint import raw_command

    out: set[str] = set()

    def walk(entry: list) -> None:
        if "write" in {_d(flag) for flag in entry[2]}:
            out.add(str(_d(entry[0])).lower())
        for sub in (entry[9] if len(entry) > 9 else []) or []:
            walk(sub)

    for entry in cast(list[Any], raw_command(client, "COMMAND", "INFO")):
        if entry:
            walk(entry)
    return sorted(out)


@cache
def write_commands() -> dict[str, list[str]]:
    """{"flavor version": [write command, ...]} of every lab server version."""
    return json.loads(WRITE_COMMANDS_FILE.read_text())["servers"]


@cache
def table() -> dict[str, list[Spec]]:
    return json.loads(DATA_FILE.read_text())["commands"]


def _begin(spec: Spec, argv: Sequence[bytes]) -> int | None:
    kind, a, b = spec[0], spec[1], spec[2]
    if kind == "index":
        return int(a) if int(a) < len(argv) else None
    if kind == "keyword":
        word, start = _b(a).upper(), int(b)
        order = range(start, len(argv)) if start >= 0 else \
            range(len(argv) + start, 0, -1)
        for i in order:
            if 0 < i < len(argv) and argv[i].upper() == word:
                return i + 1
    return None


def _find(spec: Spec, begin: int, argv: Sequence[bytes]) -> list[int]:
    kind, a, b, c = spec[3], int(spec[4]), int(spec[5]), int(spec[6])
    if kind == "range":
        if a >= 0:
            last = begin + a
        elif c > 1 and a == -1:  # the last 1/limit of the remaining arguments
            last = begin + (len(argv) - begin) // c - 1
        else:
            last = len(argv) + a
        return list(range(begin, min(last, len(argv) - 1) + 1, max(b, 1)))
    if kind == "keynum":
        if begin + a >= len(argv) or not argv[begin + a].isdigit():
            return []
        first, count = begin + b, int(argv[begin + a])
        return [first + i * max(c, 1) for i in range(count) if first + i * max(c, 1) < len(argv)]
    return []


def command_name(args: Sequence[Arg]) -> str:
    """A command as users name it: ``SET``, or ``FUNCTION RESTORE`` for a container's
    subcommand."""
    argv = [_b(a) for a in args[:2]]
    name = argv[0].decode(errors="replace")
    if len(argv) > 1 and f"{name.lower()}|{argv[1].decode(errors='replace').lower()}" in table():
        return f"{name} {argv[1].decode(errors='replace')}".upper()
    return name.upper()


def named_key(args: Sequence[Arg]) -> bytes | None:
    """The key a message names for a command: its first key (the second argument of a
    command this table does not know)."""
    keys = command_keys(args)
    if keys is None:
        return _b(args[1]) if len(args) > 1 else None
    return keys[0] if keys else None


def command_keys(args: Sequence[Arg]) -> list[bytes] | None:
    """The keys of a command, in order (duplicates kept), or None for a command this table
    does not know (a module command, a newer server's)."""
    if not args:
        return None
    argv = [_b(a) for a in args]
    name = argv[0].decode(errors="replace").lower()
    specs = table().get(name)
    if len(argv) > 1 and f"{name}|{argv[1].decode(errors='replace').lower()}" in table():
        specs = table()[f"{name}|{argv[1].decode(errors='replace').lower()}"]
    if specs is None:
        return None
    out: list[bytes] = []
    # a command with an incomplete spec may hold a placeholder key (MIGRATE's "" with KEYS)
    placeholder = any(len(spec) > 7 and spec[7] for spec in specs)
    for spec in specs:
        begin = _begin(spec, argv)
        if begin is not None:
            out.extend(argv[i] for i in _find(spec, begin, argv)
                       if argv[i] or not placeholder)
    return out
