"""RESP encoding of commands (the request side of the protocol)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

Arg = bytes | str | int | float

_pack: Callable[[tuple[Arg, ...]], bytes] | None
try:
    from hiredis import pack_command

    # hiredis's stub types the argument as a 1-tuple; it takes a command of any length.
    _pack = cast(Callable[[tuple[Arg, ...]], bytes], pack_command)
except ImportError:  # pragma: no cover - hiredis is a dependency, but keep a fallback
    _pack = None


def to_bytes(arg: Arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):
        raise TypeError("booleans are not command arguments")
    if isinstance(arg, int):
        return b"%d" % arg
    return repr(arg).encode()


def encode_command(args: Iterable[Arg]) -> bytes:
    """One command as a RESP array of bulk strings (hiredis's C encoder when present)."""
    if _pack is not None:
        return _pack(args if type(args) is tuple else tuple(args))
    return encode_command_py(args)


def encode_command_py(args: Iterable[Arg]) -> bytes:
    """The pure-Python encoder (reference for the C one)."""
    parts = [to_bytes(a) for a in args]
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n" % len(p))
        out.append(p)
        out.append(b"\r\n")
    return b"".join(out)
