"""Commands of one key each (``TYPE k``, ``GET k``, ``DUMP k`` ...), sent to both servers.

Verification sends millions of them. Encoded with one template per command name, joined
once, the same bytes go to the source and the target (two plain connections work on them at
the same time); a cluster's connection gets them as argument lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migrate.protocol.rawconn import RawConn, Reply

if TYPE_CHECKING:
    from migrate.protocol.cluster.router import Conn

# A command whose one variable argument is its key: its name (``b"GET"``), or its name and
# the fixed arguments after the key (``(b"GETRANGE", b"0", b"65536")``).
Name = bytes | tuple[bytes, ...]
KeyCommand = tuple[Name, bytes]  # (command, key)
KEY = b"$%d\r\n%b\r\n"


class _Templates(dict[Name, bytes]):
    """Command -> its RESP with a ``%``-template in the place of the key."""

    def __missing__(self, name: Name) -> bytes:
        first, *after = (name,) if isinstance(name, bytes) else name
        template = b"*%d\r\n$%d\r\n%b\r\n" % (2 + len(after), len(first), first) + KEY + \
            b"".join(b"$%d\r\n%b\r\n" % (len(a), a.replace(b"%", b"%%")) for a in after)
        self[name] = template
        return template


_TEMPLATES = _Templates()


def args(name: Name, key: bytes) -> tuple[bytes, ...]:
    """The command as a list of arguments."""
    return (name, key) if isinstance(name, bytes) else (name[0], key, *name[1:])


def encode_keyed(commands: Sequence[KeyCommand]) -> bytes:
    """RESP for commands of one key each (as :func:`migrate.protocol.resp.encode_command`
    writes them)."""
    templates = _TEMPLATES
    return b"".join([templates[name] % (len(key), key) for name, key in commands])


def encode_pairs(first: bytes, second: bytes, keys: Sequence[bytes]) -> bytes:
    """``first k`` then ``second k`` for each key ``k``."""
    template = _TEMPLATES[first] + _TEMPLATES[second]
    return b"".join([template % (len(k), k, len(k), k) for k in keys])


def ask_both(src: Conn, tgt: Conn, commands: Sequence[KeyCommand]) \
        -> tuple[list[Reply], list[Reply]]:
    """Each server's replies to the same commands."""
    if not commands:
        return [], []
    if isinstance(src, RawConn) and isinstance(tgt, RawConn):
        return _raw_both(src, tgt, encode_keyed(commands), len(commands))
    listed = [args(name, key) for name, key in commands]
    return src.call_many(listed), tgt.call_many(listed)


def ask_both_pairs(src: Conn, tgt: Conn, first: bytes, second: bytes,
                   keys: Sequence[bytes]) -> tuple[list[Reply], list[Reply]]:
    """Each server's replies to ``first k``, ``second k`` for each key (interleaved)."""
    if not keys:
        return [], []
    if isinstance(src, RawConn) and isinstance(tgt, RawConn):
        return _raw_both(src, tgt, encode_pairs(first, second, keys), 2 * len(keys))
    commands = [c for k in keys for c in ((first, k), (second, k))]
    return src.call_many(commands), tgt.call_many(commands)


def _raw_both(src: RawConn, tgt: RawConn, data: bytes, count: int) \
        -> tuple[list[Reply], list[Reply]]:
    src.send_encoded(data, count)
    tgt.send_encoded(data, count)
    return src.read_replies(count), tgt.read_replies(count)
