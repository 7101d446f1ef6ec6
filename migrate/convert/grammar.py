"""The lexical rules of redis.conf, as Redis itself applies them.

* A line is split on ``\\n``, trimmed of `` \\t\\r\\n``; empty lines and lines whose first
  character is ``#`` are skipped. A ``#`` after a value is *not* a comment: it is one more
  argument (redis src/config.c, ``loadServerConfigFromString``).
* Arguments are split like ``sdssplitargs`` (redis src/sds.c): double quotes take the escapes
  ``\\xHH``, ``\\n \\r \\t \\b \\a`` and ``\\<any>``; single quotes take only ``\\'``; a closing
  quote must be followed by a space or the end of the line; an unterminated quote is an error.
* Sizes are parsed like ``memtoull`` (redis src/util.c): digits, then an optional unit among
  ``b k kb m mb g gb`` in any case, where ``k`` = 1000 and ``kb`` = 1024.

Arguments are bytes in Redis; here they are ``str`` decoded as UTF-8 with ``surrogateescape``,
so a ``\\xff`` escape survives a round trip through :func:`quote`.
"""

from __future__ import annotations

import re

_UNQUOTED_END = " \n\r\t\0"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}
_HEX = "0123456789abcdefABCDEF"


class GrammarError(ValueError):
    """A line Redis would refuse; the message says what is wrong (without the location)."""


def split_args(line: str) -> list[str]:
    """Split one (trimmed) config line into arguments, or raise :class:`GrammarError`."""
    raw = line.encode("utf-8", "surrogateescape")
    args: list[str] = []
    p, n = 0, len(raw)
    while True:
        while p < n and chr(raw[p]).isspace():
            p += 1
        if p >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = chr(raw[p]) if p < n else "\0"
            if in_double:
                if (c == "\\" and p + 3 < n and chr(raw[p + 1]) == "x"
                        and chr(raw[p + 2]) in _HEX and chr(raw[p + 3]) in _HEX):
                    current.append(int(raw[p + 2:p + 4].decode(), 16))
                    p += 3
                elif c == "\\" and p + 1 < n:
                    p += 1
                    nxt = chr(raw[p])
                    current += _ESCAPES.get(nxt, nxt).encode("latin-1")
                elif c == '"':
                    if p + 1 < n and not chr(raw[p + 1]).isspace():
                        raise GrammarError("a closing quote must be followed by a space")
                    p += 1
                    break
                elif p >= n:
                    raise GrammarError("unbalanced quotes")
                else:
                    current.append(raw[p])
            elif in_single:
                if c == "\\" and p + 1 < n and chr(raw[p + 1]) == "'":
                    p += 1
                    current.append(ord("'"))
                elif c == "'":
                    if p + 1 < n and not chr(raw[p + 1]).isspace():
                        raise GrammarError("a closing quote must be followed by a space")
                    p += 1
                    break
                elif p >= n:
                    raise GrammarError("unbalanced quotes")
                else:
                    current.append(raw[p])
            else:
                if p >= n or c in _UNQUOTED_END:
                    break
                if c == '"':
                    in_double = True
                elif c == "'":
                    in_single = True
                else:
                    current.append(raw[p])
            p += 1
        args.append(bytes(current).decode("utf-8", "surrogateescape"))


def quote(arg: str) -> str:
    """An argument as redis.conf text: bare when safe, else double-quoted with escapes."""
    if arg and not re.search(r"[\s\"'\\#]", arg) and arg.isprintable() and arg.isascii():
        return arg
    out = ['"']
    for byte in arg.encode("utf-8", "surrogateescape"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
          "g": 1000**3, "gb": 1024**3}
_SIZE = re.compile(r"^(-?\d+)([A-Za-z]*)$")


def parse_size(value: str) -> int:
    """``memtoull``: ``"64mb"`` -> 67108864; an unknown unit raises :class:`GrammarError`."""
    match = _SIZE.match(value)
    if not match:
        raise GrammarError(f"{value!r} is not a size (digits and an optional unit)")
    unit = match.group(2).lower()
    if unit not in _UNITS:
        raise GrammarError(f"unknown unit {match.group(2)!r} in {value!r} "
                           "(use b, k, kb, m, mb, g or gb)")
    return int(match.group(1)) * _UNITS[unit]
