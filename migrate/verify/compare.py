"""Per-type comparison of one batch of keys between a source and a target.

Everything is read in pipelined batches. Collections up to ``small`` elements are read whole;
bigger ones are compared chunk by chunk (LRANGE/ZRANGE windows, HSCAN against HMGET, SSCAN
against SMISMEMBER, XRANGE pages), so memory stays bounded whatever the key size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migrate.protocol.rawconn import Reply, is_error, pairs
from migrate.protocol.resp import Arg
from migrate.verify.fingerprint import DumpOdds, call_both, same_dumps
from migrate.verify.hll import same_hyperloglog
from migrate.verify.keyed import ask_both, ask_both_pairs
from migrate.verify.model import Mismatch

if TYPE_CHECKING:
    from migrate.protocol.cluster.router import Conn


@dataclass
class Side:
    """One server as the comparator sees it: a connection and what it supports."""

    conn: Conn  # a RawConn, or a RoutedConn for a cluster
    expiretime: bool  # PEXPIRETIME (7.0+); else PTTL relative to now
    field_ttl: bool  # HPEXPIRETIME (Redis 7.4+, Valkey 9+)
    dumps: DumpOdds = field(default_factory=DumpOdds)  # how often DUMPs matched, by type


@dataclass(frozen=True)
class CompareOptions:
    ttl_tolerance_ms: int = 2000
    small: int = 1000


# Strings are read up to this many bytes in the batch's first round (GETRANGE 0 N returns
# N + 1 bytes of a longer one); a longer string is compared window by window, so a batch of
# big strings never sits whole in memory (a 500 MiB string read with GET took 2 GiB).
STRING_FIRST = 64 * 1024
STRING_WINDOW = 1 << 20
FIRST_READ = (b"GETRANGE", b"0", b"%d" % STRING_FIRST)

LENGTH_COMMAND = {b"list": b"LLEN", b"set": b"SCARD", b"zset": b"ZCARD", b"hash": b"HLEN",
                  b"stream": b"XLEN"}


def _ttl_commands(side: Side, key: bytes) -> tuple[Arg, ...]:
    return ("PEXPIRETIME", key) if side.expiretime else ("PTTL", key)


def _absolute(side: Side, value: Reply, now_ms: int) -> int:
    """-1 for no TTL; otherwise the expiry as a Unix time in ms."""
    if not isinstance(value, int) or value < 0:
        return -1
    return value if side.expiretime else now_ms + value


def compare_batch(src: Side, tgt: Side, src_db: int, tgt_db: int, keys: list[bytes],
                  opts: CompareOptions) -> list[Mismatch]:
    """Compare ``keys`` of ``src_db`` on the source with the same keys in ``tgt_db``."""
    if not keys:
        return []
    src.conn.select(src_db)
    tgt.conn.select(tgt_db)
    return _compare_keys(src, tgt, src_db, keys, opts)


def _compare_keys(src: Side, tgt: Side, src_db: int, keys: list[bytes],
                  opts: CompareOptions) -> list[Mismatch]:
    """Compare type, TTL and value of each key (the databases are selected)."""
    if not keys:
        return []
    now = int(time.time() * 1000)
    same_ttl = src.expiretime == tgt.expiretime  # both answer the same TTL command
    if same_ttl:
        smeta, tmeta = ask_both_pairs(src.conn, tgt.conn, b"TYPE",
                                      b"PEXPIRETIME" if src.expiretime else b"PTTL", keys)
    else:
        meta_cmds = lambda side: [c for k in keys for c in  # noqa: E731
                                  (("TYPE", k), _ttl_commands(side, k))]
        smeta, tmeta = call_both(src.conn, meta_cmds(src), tgt.conn, meta_cmds(tgt))
    out: list[Mismatch] = []
    typed: list[tuple[bytes, bytes]] = []
    tolerance = opts.ttl_tolerance_ms
    for key, stype, ttype, sexp, texp in zip(keys, smeta[0::2], tmeta[0::2], smeta[1::2],
                                             tmeta[1::2], strict=True):
        if stype == ttype and stype.__class__ is bytes:  # the common case, kept short
            if stype == b"none":
                continue
        else:
            stype, ttype = _type(stype), _type(ttype)
            if stype == b"none" and ttype == b"none":
                continue
            if stype == b"none":
                out.append(Mismatch(src_db, key, "extra",
                                    f"only on the target ({ttype.decode()})"))
                continue
            if ttype == b"none":
                out.append(Mismatch(src_db, key, "missing",
                                    f"{stype.decode()} not on the target"))
                continue
            if stype != ttype:
                out.append(Mismatch(src_db, key, "type",
                                    f"{stype.decode()} on the source, {ttype.decode()} on "
                                    "the target"))
                continue
        # the same reply to the same TTL command: the same TTL (or none on either side)
        if not (same_ttl and sexp == texp and sexp.__class__ is int):
            ttl_problem = _ttl_difference(_absolute(src, sexp, now), _absolute(tgt, texp, now),
                                          tolerance)
            if ttl_problem:
                out.append(Mismatch(src_db, key, "ttl", ttl_problem))
        typed.append((key, stype))
    out.extend(_compare_values(src, tgt, src_db, typed, opts))
    return out


def _type(reply: Reply) -> bytes:
    if isinstance(reply, bytes):
        return reply
    return b"none" if reply is None or is_error(reply) else str(reply).encode()


def _ttl_difference(sttl: int, tttl: int, tolerance: int) -> str | None:
    if sttl == -1 and tttl == -1:
        return None
    if sttl == -1:
        return f"no TTL on the source, expires at {tttl} ms on the target"
    if tttl == -1:
        return f"expires at {sttl} ms on the source, no TTL on the target"
    if abs(sttl - tttl) > tolerance:
        return f"expiry differs by {abs(sttl - tttl)} ms (tolerance {tolerance} ms)"
    return None


def _compare_values(src: Side, tgt: Side, db: int, typed: list[tuple[bytes, bytes]],
                    opts: CompareOptions) -> list[Mismatch]:
    out: list[Mismatch] = []
    first = [(FIRST_READ if kind == b"string" else LENGTH_COMMAND.get(kind, b"TYPE"), key)
             for key, kind in typed]
    sfirst, tfirst = ask_both(src.conn, tgt.conn, first)
    whole: list[tuple[bytes, bytes]] = []
    big: list[tuple[bytes, bytes]] = []
    streams: list[bytes] = []
    for (key, kind), sv, tv in zip(typed, sfirst, tfirst, strict=True):
        if kind == b"string" and _longer_than_first(sv, tv):
            out.extend(_compare_long_string(src, tgt, db, key))
        elif kind == b"string":
            if sv != tv and not (isinstance(sv, bytes) and isinstance(tv, bytes)
                                 and same_hyperloglog(sv, tv)):
                out.append(Mismatch(db, key, "value", _string_detail(sv, tv)))
        elif kind in LENGTH_COMMAND:
            if sv != tv:
                what = "entries" if kind == b"stream" else "elements"
                out.append(Mismatch(db, key, "stream" if kind == b"stream" else "value",
                                    f"{kind.decode()} has {sv} {what} on the source, {tv} on "
                                    "the target"))
                continue
            if kind == b"stream" and isinstance(sv, int) and sv <= opts.small:
                streams.append(key)
            elif kind == b"stream":
                out.extend(_compare_stream(src, tgt, db, key, opts))
            elif isinstance(sv, int) and sv <= opts.small:
                whole.append((key, kind))
            else:
                big.append((key, kind))
        else:  # module types and anything unknown: the type matched; say what was not checked
            pass
    # not streams: a stream's DUMP holds its pending entries, unbounded by its length
    same = same_dumps(src.conn, tgt.conn, src.dumps, whole)
    out.extend(_compare_whole(src, tgt, db, [w for w in whole if w[0] not in same], opts))
    out.extend(_compare_streams(src, tgt, db, streams, opts))
    for key, kind in big:
        out.extend(_CHUNKED[kind](src, tgt, db, key, opts))
    return out


def _longer_than_first(sv: Reply, tv: Reply) -> bool:
    return any(isinstance(v, bytes) and len(v) > STRING_FIRST for v in (sv, tv))


def _compare_long_string(src: Side, tgt: Side, db: int, key: bytes) -> list[Mismatch]:
    """A string longer than :data:`STRING_FIRST`, compared :data:`STRING_WINDOW` bytes at a
    time (its length first)."""
    slen, tlen = src.conn.call("STRLEN", key), tgt.conn.call("STRLEN", key)
    if slen != tlen or not isinstance(slen, int):
        return [Mismatch(db, key, "value", f"string of {slen} bytes on the source, {tlen} "
                                           "bytes on the target")]
    for start in range(0, slen, STRING_WINDOW):
        cmd = ("GETRANGE", key, start, start + STRING_WINDOW - 1)
        sv, tv = call_both(src.conn, [cmd], tgt.conn, [cmd])
        if sv[0] != tv[0]:
            at = start + _first_difference(sv[0], tv[0])
            return [Mismatch(db, key, "value", f"strings of {slen} bytes differ from byte {at}")]
    return []


def _first_difference(sv: Reply, tv: Reply) -> int:
    if not (isinstance(sv, bytes) and isinstance(tv, bytes)):
        return 0
    return next((i for i, (a, b) in enumerate(zip(sv, tv, strict=False)) if a != b),
                min(len(sv), len(tv)))


def _string_detail(sv: Reply, tv: Reply) -> str:
    slen = len(sv) if isinstance(sv, bytes) else 0
    tlen = len(tv) if isinstance(tv, bytes) else 0
    if slen != tlen:
        return f"string of {slen} bytes on the source, {tlen} bytes on the target"
    return f"strings of {slen} bytes differ from byte {_first_difference(sv, tv)}"


WHOLE_READ = {b"list": lambda k: ("LRANGE", k, 0, -1), b"set": lambda k: ("SMEMBERS", k),
              b"zset": lambda k: ("ZRANGE", k, 0, -1, "WITHSCORES"),
              b"hash": lambda k: ("HGETALL", k)}


def _normal(kind: bytes, reply: Reply) -> object:
    if is_error(reply) or reply is None:
        return reply
    if kind == b"set":
        return sorted(reply)
    if kind == b"zset":
        return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]
    if kind == b"hash":
        return pairs(reply)
    return reply


def _compare_whole(src: Side, tgt: Side, db: int, keys: list[tuple[bytes, bytes]],
                   opts: CompareOptions) -> list[Mismatch]:
    if not keys:
        return []
    cmds = [WHOLE_READ[kind](key) for key, kind in keys]
    sv, tv = call_both(src.conn, cmds, tgt.conn, cmds)
    out: list[Mismatch] = []
    for (key, kind), s, t in zip(keys, sv, tv, strict=True):
        sn, tn = _normal(kind, s), _normal(kind, t)
        if sn != tn:
            out.append(Mismatch(db, key, "value", _collection_detail(kind, sn, tn)))
        elif kind == b"hash":
            fields = sorted(sn) if isinstance(sn, dict) else []
            out.extend(_compare_field_ttls(src, tgt, db, key, fields, opts.ttl_tolerance_ms))
    return out


def _collection_detail(kind: bytes, sn: object, tn: object) -> str:
    name = kind.decode()
    if isinstance(sn, dict) and isinstance(tn, dict):
        diff = sorted(k for k in set(sn) | set(tn) if sn.get(k) != tn.get(k))
        return f"hash fields differ: {_few(diff)}"
    if isinstance(sn, list) and isinstance(tn, list):
        at = next((i for i, (a, b) in enumerate(zip(sn, tn, strict=False)) if a != b),
                  min(len(sn), len(tn)))
        return f"{name} differs at element {at}"
    return f"{name} differs"


def _few(items: list[bytes], n: int = 3) -> str:
    shown = ", ".join(i.decode(errors="replace") for i in items[:n])
    return shown + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _compare_field_ttls(src: Side, tgt: Side, db: int, key: bytes, fields: list[bytes],
                        tolerance: int = 2000) -> list[Mismatch]:
    if not fields or not (src.field_ttl or tgt.field_ttl):
        return []
    cmd: tuple[Arg, ...] = ("HPEXPIRETIME", key, "FIELDS", len(fields), *fields)
    sv = src.conn.call(*cmd) if src.field_ttl else [-1] * len(fields)
    tv = tgt.conn.call(*cmd) if tgt.field_ttl else None
    if is_error(sv):
        return []
    if tv is None:
        with_ttl = [f for f, t in zip(fields, sv, strict=True) if isinstance(t, int) and t > 0]
        if with_ttl:
            return [Mismatch(db, key, "field-ttl",
                             f"{len(with_ttl)} field(s) with a TTL on the source; the target "
                             f"has no field TTLs (no HPEXPIRETIME): {_few(with_ttl)}")]
        return []
    if is_error(tv):
        return [Mismatch(db, key, "field-ttl", f"target refused HPEXPIRETIME: {tv}")]
    bad = [f for f, s, t in zip(fields, sv, tv, strict=True)
           if _ttl_difference(max(s, -1), max(t, -1), tolerance)]
    if bad:
        return [Mismatch(db, key, "field-ttl", f"field TTLs differ: {_few(bad)}")]
    return []


# --- chunked comparisons for big collections ----------------------------------------------

def _chunked_range(command: str, kind: bytes) -> Callable[..., list[Mismatch]]:
    def compare(src: Side, tgt: Side, db: int, key: bytes, opts: CompareOptions) \
            -> list[Mismatch]:
        start = 0
        extra = ("WITHSCORES",) if kind == b"zset" else ()
        while True:
            cmd = (command, key, start, start + opts.small - 1, *extra)
            s = _normal(kind, src.conn.call(*cmd))
            t = _normal(kind, tgt.conn.call(*cmd))
            if s != t:
                return [Mismatch(db, key, "value", f"{kind.decode()} differs in elements "
                                                   f"{start}-{start + opts.small - 1}")]
            if not s:
                return []
            start += opts.small
    return compare


def _chunked_hash(src: Side, tgt: Side, db: int, key: bytes, opts: CompareOptions) \
        -> list[Mismatch]:
    cursor: bytes = b"0"
    while True:
        cursor, flat = src.conn.call("HSCAN", key, cursor, "COUNT", opts.small)
        fields = flat[0::2]
        if fields:
            theirs = tgt.conn.call("HMGET", key, *fields)
            bad = [f for f, v, w in zip(fields, flat[1::2], theirs, strict=True) if v != w]
            if bad:
                return [Mismatch(db, key, "value", f"hash fields differ: {_few(bad)}")]
            found = _compare_field_ttls(src, tgt, db, key, fields, opts.ttl_tolerance_ms)
            if found:
                return found
        if cursor == b"0":
            return []


def _chunked_set(src: Side, tgt: Side, db: int, key: bytes, opts: CompareOptions) \
        -> list[Mismatch]:
    cursor: bytes = b"0"
    while True:
        cursor, members = src.conn.call("SSCAN", key, cursor, "COUNT", opts.small)
        if members:
            there = tgt.conn.call("SMISMEMBER", key, *members)
            bad = [m for m, ok in zip(members, there, strict=True) if not ok]
            if bad:
                return [Mismatch(db, key, "value", f"set members missing on the target: "
                                                   f"{_few(bad)}")]
        if cursor == b"0":
            return []


_CHUNKED: dict[bytes, Callable[..., list[Mismatch]]] = {
    b"list": _chunked_range("LRANGE", b"list"),
    b"zset": _chunked_range("ZRANGE", b"zset"),
    b"hash": _chunked_hash,
    b"set": _chunked_set,
}


# --- streams ------------------------------------------------------------------------------

STREAM_FIELDS = (b"length", b"last-generated-id", b"max-deleted-entry-id", b"entries-added")
# Not compared: a group's entries-read, a lag estimate that replication does not keep exact
# (seen here: a Valkey 8.0 replica of Redis 7.0 under XREADGROUP drifts from the primary's,
# with identical entries, last-delivered-id and pending entries).
GROUP_FIELDS = (b"name", b"consumers", b"pending", b"last-delivered-id")


def _compare_streams(src: Side, tgt: Side, db: int, keys: list[bytes],
                     opts: CompareOptions) -> list[Mismatch]:
    """Streams of equal length, compared in two pipelined rounds for the whole batch (first
    page of entries, stream and group info; then each group's consumers and first page of
    pending entries); a stream with more pages is followed key by key."""
    if not keys:
        return []
    first = [c for key in keys for c in (("XRANGE", key, "-", "+", "COUNT", opts.small),
                                         ("XINFO", "STREAM", key), ("XINFO", "GROUPS", key))]
    sv, tv = call_both(src.conn, first, tgt.conn, first)
    out: list[Mismatch] = []
    pending: dict[bytes, list[dict[bytes, Reply]]] = {}  # key: its groups still to compare
    theirs: dict[bytes, dict[bytes, dict[bytes, Reply]]] = {}
    for i, key in enumerate(keys):
        s, t = sv[3 * i:3 * i + 3], tv[3 * i:3 * i + 3]
        if any(is_error(r) for r in (*s, *t)) or len(s[0]) >= opts.small:
            out.extend(_compare_stream(src, tgt, db, key, opts))  # key by key
            continue
        problem = "entries differ after -" if s[0] != t[0] else \
            _stream_info_problem(pairs(s[1]), pairs(t[1]))
        sgroups = [pairs(g) for g in s[2]]
        tgroups = {g[b"name"]: g for g in (pairs(g) for g in t[2])}
        if problem is None and len(sgroups) != len(tgroups):
            problem = f"{len(sgroups)} consumer groups on the source, {len(tgroups)} on the " \
                      "target"
        if problem:
            out.append(Mismatch(db, key, "stream", problem))
        elif sgroups:
            pending[key], theirs[key] = sgroups, tgroups
    asked = [(key, g[b"name"]) for key, groups in pending.items() for g in groups
             if g[b"name"] in theirs[key]]
    second = [c for key, name in asked for c in (("XINFO", "CONSUMERS", key, name),
                                                 ("XPENDING", key, name, "-", "+", opts.small))]
    sv, tv = call_both(src.conn, second, tgt.conn, second)
    replies = {ident: (sv[2 * i:2 * i + 2], tv[2 * i:2 * i + 2])
               for i, ident in enumerate(asked)}
    for key, sgroups in pending.items():
        for group in sgroups:
            name = group[b"name"]
            problem = _group_problem(name, group, theirs[key].get(name))
            if problem is None:
                s, t = replies[(key, name)]
                problem = _group_page_problem(s, t, opts)
                if problem == MORE:
                    problem = _compare_group(src, tgt, key, name, opts)
                if problem:
                    problem = f"group {name.decode()}: {problem}"
            if problem:
                out.append(Mismatch(db, key, "stream", problem))
                break
    return out


MORE = "more"  # a group's first page of pending entries was full: read on


def _stream_info_problem(sinfo: dict[bytes, Reply], tinfo: dict[bytes, Reply]) -> str | None:
    for name in STREAM_FIELDS:
        if name in sinfo and name in tinfo and sinfo[name] != tinfo[name]:
            return f"{name.decode()}: {sinfo[name]!r} on the source, {tinfo[name]!r} on the " \
                   "target"
    return None


def _group_problem(name: bytes, group: dict[bytes, Reply],
                   theirs: dict[bytes, Reply] | None) -> str | None:
    if theirs is None:
        return f"group {name.decode()} not on the target"
    for fname in GROUP_FIELDS:
        if fname in group and fname in theirs and group[fname] != theirs[fname]:
            return f"group {name.decode()} {fname.decode()}: {group[fname]!r} on the " \
                   f"source, {theirs[fname]!r} on the target"
    return None


def _consumers(reply: Reply) -> dict[bytes, Reply]:
    return {c[b"name"]: c.get(b"pending") for c in (pairs(c) for c in reply)}


def _consumers_problem(sc: dict[bytes, Reply], tc: dict[bytes, Reply]) -> str | None:
    if sc != tc:
        diff = sorted(n for n in set(sc) | set(tc) if sc.get(n) != tc.get(n))
        return f"consumers differ: {_few(diff)}"
    return None


def _pending_problem(s: Reply, t: Reply, start: bytes) -> str | None:
    if [(e[0], e[1], e[3]) for e in s] != [(e[0], e[1], e[3]) for e in t]:
        return f"pending entries differ after {start.decode()}"
    return None


def _group_page_problem(s: list[Reply], t: list[Reply], opts: CompareOptions) -> str | None:
    """A group's consumers and first page of pending entries (replies of XINFO CONSUMERS
    and XPENDING on each side): the problem, None, or :data:`MORE` to read further."""
    problem = _consumers_problem(_consumers(s[0]), _consumers(t[0])) or \
        _pending_problem(s[1], t[1], b"-")
    if problem is None and len(s[1]) >= opts.small:
        return MORE
    return problem


def _compare_stream(src: Side, tgt: Side, db: int, key: bytes, opts: CompareOptions) \
        -> list[Mismatch]:
    start: bytes = b"-"
    while True:
        cmd = ("XRANGE", key, start, "+", "COUNT", opts.small)
        s, t = src.conn.call(*cmd), tgt.conn.call(*cmd)
        if s != t:
            return [Mismatch(db, key, "stream", f"entries differ after {start.decode()}")]
        if len(s) < opts.small:
            break
        start = b"(" + s[-1][0]
    problem = _stream_info_problem(pairs(src.conn.call("XINFO", "STREAM", key)),
                                   pairs(tgt.conn.call("XINFO", "STREAM", key)))
    if problem:
        return [Mismatch(db, key, "stream", problem)]
    sgroups = [pairs(g) for g in src.conn.call("XINFO", "GROUPS", key)]
    tgroups = {g[b"name"]: g for g in (pairs(g) for g in tgt.conn.call("XINFO", "GROUPS", key))}
    if len(sgroups) != len(tgroups):
        return [Mismatch(db, key, "stream", f"{len(sgroups)} consumer groups on the source, "
                                            f"{len(tgroups)} on the target")]
    for group in sgroups:
        name = group[b"name"]
        problem = _group_problem(name, group, tgroups.get(name))
        if problem:
            return [Mismatch(db, key, "stream", problem)]
        problem = _compare_group(src, tgt, key, name, opts)
        if problem:
            return [Mismatch(db, key, "stream", f"group {name.decode()}: {problem}")]
    return []


def _compare_group(src: Side, tgt: Side, key: bytes, group: bytes, opts: CompareOptions) \
        -> str | None:
    problem = _consumers_problem(_consumers(src.conn.call("XINFO", "CONSUMERS", key, group)),
                                 _consumers(tgt.conn.call("XINFO", "CONSUMERS", key, group)))
    if problem:
        return problem
    start: bytes = b"-"
    while True:
        cmd = ("XPENDING", key, group, start, "+", opts.small)
        s, t = src.conn.call(*cmd), tgt.conn.call(*cmd)
        problem = _pending_problem(s, t, start)
        if problem or len(s) < opts.small:
            return problem
        start = b"(" + s[-1][0]
