"""RESP encoding of commands (the request side of the protocol)."""

from __future__ import annotations

from collections.abc import Iterable

try:
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover - hiredis is a dependency, but keep a fallback
    _pack = None

Arg = bytes | str | int | float


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
        return _pack(tuple(args))
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
