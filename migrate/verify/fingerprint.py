"""Serialized values as fingerprints, and both servers read at the same time.

Two equal DUMP payloads (without the footer that names the RDB version and holds the
checksum) mean two identical values: type, elements, scores, hash field TTLs. So a small
list, set, sorted set or hash (up to ``small`` elements, the size read whole anyway) whose
DUMPs match on both sides needs no element-by-element read. Streams are not DUMPed: their
payload holds the groups' pending entries, which their length does not bound. Different
payloads prove nothing (two servers may encode the same value differently); those keys are
compared element by element as before. When a type's payloads keep differing (a source and
a target that encode it differently), that type is no longer DUMPed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from migrate.protocol.rawconn import RawConn, Reply
from migrate.protocol.resp import Arg
from migrate.verify.keyed import ask_both

if TYPE_CHECKING:
    from migrate.protocol.cluster.router import Conn

FOOTER = 10  # RDB version (2 bytes) and CRC64 (8 bytes)
TRIAL = 64  # DUMPs of a type before judging whether its payloads tend to match


class DumpOdds:
    """How often the two sides' DUMP payloads of each type matched."""

    def __init__(self) -> None:
        self.tries: dict[bytes, int] = {}
        self.hits: dict[bytes, int] = {}

    def worth(self, kind: bytes) -> bool:
        tries = self.tries.get(kind, 0)
        return tries < TRIAL or self.hits.get(kind, 0) * 4 >= tries

    def count(self, kind: bytes, hits: int, tries: int) -> None:
        self.tries[kind] = self.tries.get(kind, 0) + tries
        self.hits[kind] = self.hits.get(kind, 0) + hits


def same_dumps(src: Conn, tgt: Conn, odds: DumpOdds,
               keys: Sequence[tuple[bytes, bytes]]) -> set[bytes]:
    """The keys (of ``(key, type)`` pairs, each of the same type and size on both sides and
    small enough to read whole) whose DUMP payloads are the same on both servers."""
    worth = {kind: odds.worth(kind) for kind in {kind for _, kind in keys}}
    asked = [(key, kind) for key, kind in keys if worth[kind]]
    if not asked:
        return set()
    sv, tv = ask_both(src, tgt, [(b"DUMP", key) for key, _ in asked])
    same = set()
    missed: dict[bytes, int] = {}
    for (key, kind), s, t in zip(asked, sv, tv, strict=True):
        if s.__class__ is bytes and t.__class__ is bytes and len(s) == len(t) > FOOTER and \
                (s == t or s[:-FOOTER] == t[:-FOOTER]):
            same.add(key)
        else:
            missed[kind] = missed.get(kind, 0) + 1
    for kind, tries in Counter(kind for _, kind in asked).items():
        odds.count(kind, tries - missed.get(kind, 0), tries)
    return same


def call_both(src: Conn, scmds: Sequence[Sequence[Arg]], tgt: Conn,
              tcmds: Sequence[Sequence[Arg]]) -> tuple[list[Reply], list[Reply]]:
    """Each server's replies to its pipeline; two plain connections work at the same time
    (both pipelines are sent before either is read)."""
    if isinstance(src, RawConn) and isinstance(tgt, RawConn) and scmds and tcmds:
        src.send_many(scmds)
        tgt.send_many(tcmds)
        return src.read_replies(len(scmds)), tgt.read_replies(len(tcmds))
    return src.call_many(scmds), tgt.call_many(tcmds)
