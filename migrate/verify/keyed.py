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

KeyCommand = tuple[bytes, bytes]  # (command name, key)

class _Templates(dict[bytes, bytes]):
    """Command name -> ``*2``, the name as a bulk string, and a ``%``-template of the key."""

    def __missing__(self, name: bytes) -> bytes:
        template = self[name] = b"*2\r\n$%d\r\n%b\r\n" % (len(name), name) + KEY
        return template


KEY = b"$%d\r\n%b\r\n"
_TEMPLATES = _Templates()


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
    return src.call_many(commands), tgt.call_many(commands)


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
