"""Differential tests' tools: write commands run on a real source while a sync follows it,
and a key-by-key comparison of two real servers (values, TTLs, field TTLs, streams with their
groups and pending entries, every database, function libraries)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from migrate.endpoint import raw_command
from migrate.lab.server import ServerProcess
from migrate.verify.hll import registers
from migrate.verify.model import is_internal
from tests.rdb.snapshot import server_snapshot

DONE = b"__test:done"


class Follow:
    """``kvmigrate sync --follow`` running in the background, its output in files."""

    def __init__(self, argv: list[str], logs: Path):
        self.out, self.err = logs.with_suffix(".out"), logs.with_suffix(".err")
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def poll(self) -> int | None:
        return self.proc.poll()

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.proc.kill()


def follow(source: ServerProcess, target: ServerProcess, state: Path, *extra: str,
           mode: str = "auto") -> Follow:
    """``kvmigrate sync --follow`` in the background, returned once it says it follows."""
    status = state.parent / f"{state.name}.json"
    run_ = Follow([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                   "--target", target.url, "--mode", mode, "--follow",
                   "--state", str(state), "--status-json", str(status), *extra],
                  state.parent / f"{state.name}-{time.monotonic_ns()}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "following the source" in run_.err.read_text():
            return run_
        if run_.poll() is not None:
            raise AssertionError(run_.err.read_text())
        time.sleep(0.1)
    run_.kill()
    raise AssertionError("the sync did not reach the follow phase")


def stop(run_: Follow) -> tuple[int, str, str]:
    if run_.poll() is None:
        run_.send_signal(signal.SIGINT)
    code = run_.wait(60)
    return code, run_.out.read_text(), run_.err.read_text()


def run(source: ServerProcess, commands: list[list[Any]], db: int = 0) -> None:
    """Run each command on the source as a client would (errors are the test's bug)."""
    client = source.client(db=db)
    for cmd in commands:
        raw_command(client, *cmd)


def _seen(node: ServerProcess, stamp: bytes) -> bool:
    try:
        return node.client().get(DONE) == stamp
    except redis.ResponseError:  # a cluster node that does not hold the key's slot (MOVED)
        return False


def wait_applied(source: ServerProcess, target: ServerProcess, timeout: float = 30,
                 cluster: Any = None) -> None:
    """A last write on the source, seen on the target (any primary of ``cluster``): the
    stream is applied in order, so everything written before it has arrived."""
    stamp = str(time.time_ns()).encode()
    source.client().set(DONE, stamp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(_seen(node, stamp) for node in (cluster.nodes if cluster else [target])):
            return
        time.sleep(0.05)
    raise AssertionError("the last write did not reach the target")


def _normalized(snapshot: dict, entries_read: bool = True) -> dict:
    out = {}
    for (db, key), (kind, value, expire, fe) in snapshot.items():
        if is_internal(key) or key == DONE:
            continue
        if kind == "string" and (regs := registers(value)) is not None:
            value = ("hyperloglog", regs)  # Dragonfly re-encodes them: compare registers
        if kind == "stream":  # seen/active times are when each server saw the read
            value = {**value, "groups": [(g[0], g[1], g[2] if entries_read else "-", g[3],
                                          [(c[0], c[3]) for c in g[4]])
                                         for g in value["groups"]]}
        out[(db, key)] = (kind, value, expire, fe)
    return out


def _same(a: tuple | None, b: tuple | None, slack_ms: int, field_slack_ms: int = 0) -> bool:
    if a == b:
        return True
    if a is None or b is None or a[:2] != b[:2] or (None in (a[2], b[2]) and a[2] != b[2]):
        return False
    if a[2] is not None and abs(a[2] - b[2]) > slack_ms:
        return False
    fa, fb = a[3] or {}, b[3] or {}
    return fa.keys() == fb.keys() and all(abs(fa[f] - fb[f]) < field_slack_ms or fa[f] == fb[f]
                                          for f in fa)


def functions(server: ServerProcess) -> dict[bytes, bytes]:
    if server.flavor == "dragonfly":  # no FUNCTION (docs/compatibility.md)
        return {}
    libs = raw_command(server.client(), "FUNCTION", "LIST", "WITHCODE")
    out = {}
    for lib in libs:  # type: ignore[union-attr]
        d = lib if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2], strict=True))
        out[d[b"library_name"]] = d[b"library_code"]
    return out


def _unknown_entries_read(source: dict, target: dict) -> None:
    """A group whose entries-read the source does not know (nil: a lag estimate it cannot
    make) has nothing to carry: Dragonfly makes its own estimate there (docs/compatibility.md
    'Streams'); the target's is not compared."""
    for k, (kind, value, *_rest) in source.items():
        if kind != "stream" or k not in target or target[k][0] != "stream":
            continue
        unknown = {g[0] for g in value["groups"] if g[2] is None}
        if unknown:
            t = target[k]
            groups = [(g[0], g[1], None if g[0] in unknown else g[2], *g[3:])
                      for g in t[1]["groups"]]
            target[k] = (t[0], {**t[1], "groups": groups}, *t[2:])


def diff_pairs(source: ServerProcess, target: ServerProcess,
               target_nodes: list[ServerProcess] | None = None
               ) -> list[tuple[Any, tuple | None, tuple | None]]:
    """(key or "functions", source's, target's) for everything that differs between the
    two servers (or the source and the primaries ``target_nodes`` of a cluster target, each
    of which must hold the function libraries); a key is (db, name) and its value (kind,
    value, expiry, field TTLs)."""
    # Redis 7.0 replicates XREADGROUP as XCLAIM ... LASTID, after which a Valkey 8.x group's
    # entries-read (the lag estimate) is unknown, as on Valkey's own replica of Redis 7.0
    # (docs/compatibility.md 'Streams'): compared everywhere else.
    exact = not (source.version.startswith("7.0") and target.flavor in ("valkey", "dragonfly"))
    a, b = _normalized(server_snapshot(source.endpoint), exact), {}
    for node in target_nodes or [target]:
        b.update(_normalized(server_snapshot(node.endpoint), exact))
    _unknown_entries_read(a, b)
    # Dragonfly 1.40.1 keeps some millisecond deadlines 1 ms earlier (seen: SET ... PXAT;
    # once 5 ms on a loaded machine); docs/compatibility.md 'Dragonfly as a target'
    # and field deadlines in whole seconds (docs/compatibility.md 'Hash field TTLs')
    slack, field_slack = (10, 1000) if target.flavor == "dragonfly" else (0, 0)
    out: list[tuple[Any, tuple | None, tuple | None]] = [
        (k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
        if not _same(a.get(k), b.get(k), slack, field_slack)]
    fa = functions(source)
    for node in target_nodes or [target]:
        if fa != (fb := functions(node)):
            out.append(("functions", tuple(sorted(fa)), tuple(sorted(fb))))
            break
    return out


def differences(source: ServerProcess, target: ServerProcess) -> list[str]:
    """Every key that differs between the two servers, in words (empty: equal)."""
    return [f"{k}: source {a!r:.300} target {b!r:.300}" for k, a, b in diff_pairs(source, target)]


def converge(source: ServerProcess, target: ServerProcess, timeout: float = 20) -> list[str]:
    """The differences once the target stopped changing (scan mode copies out of order)."""
    deadline = time.monotonic() + timeout
    diff = differences(source, target)
    while diff and time.monotonic() < deadline:
        time.sleep(0.3)
        diff = differences(source, target)
    return diff


# Write commands every supported source and target share (Redis 7.0 and later, Valkey 8.0 and
# later), each chosen for what its replication carries: values computed on the source
# (HINCRBYFLOAT, INCRBYFLOAT), effects of scripts, keys in other databases, streams with
# groups and pending entries, expiries, a DUMP payload restored under another name.
COMMON: list[list[Any]] = [
    ["SET", "s:1", "v1"], ["APPEND", "s:1", "-more"], ["SETRANGE", "s:1", 0, "V"],
    ["INCR", "s:n"], ["INCRBYFLOAT", "s:f", "1.25"], ["SET", "s:ttl", "x", "PX", 900000],
    ["SET", "s:gone", "x"], ["DEL", "s:gone"], ["SET", "s:un", "x"], ["UNLINK", "s:un"],
    ["SET", "s:getdel", "x"], ["GETDEL", "s:getdel"], ["SET", "s:getex", "x"],
    ["GETEX", "s:getex", "EX", 5000], ["SET", "s:p", "x", "EX", 100], ["PERSIST", "s:p"],
    ["MSET", "m:1", "a", "m:2", "b"], ["SETBIT", "b:1", 7, 1], ["SETBIT", "b:2", 3, 1],
    ["BITOP", "OR", "b:or", "b:1", "b:2"],
    ["HSET", "h:1", "f", "1.5", "g", "1"], ["HINCRBYFLOAT", "h:1", "f", "2.25"],
    ["HINCRBY", "h:1", "g", 5], ["HDEL", "h:1", "g"], ["HSETNX", "h:1", "n", "v"],
    ["LPUSH", "l:1", "a", "b", "c"], ["RPOPLPUSH", "l:1", "l:2"],
    ["LMOVE", "l:1", "l:2", "LEFT", "RIGHT"], ["LSET", "l:2", 0, "z"], ["LTRIM", "l:2", 0, 5],
    ["SADD", "S:1", "a", "b", "c"], ["SADD", "S:2", "b", "c", "d"], ["SMOVE", "S:1", "S:2", "a"],
    ["SINTERSTORE", "S:i", "S:1", "S:2"], ["SPOP", "S:2"],
    ["ZADD", "z:1", 1, "a", 2, "b"], ["ZINCRBY", "z:1", 2.5, "a"],
    ["ZUNIONSTORE", "z:u", 1, "z:1"], ["ZPOPMIN", "z:1"],
    ["PFADD", "hll:1", "a", "b"], ["PFADD", "hll:2", "c"], ["PFMERGE", "hll:m", "hll:1", "hll:2"],
    ["GEOADD", "g:1", 13.36, 38.11, "Palermo", 15.08, 37.5, "Catania"],
    ["GEOSEARCHSTORE", "g:near", "g:1", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km"],
    ["XADD", "x:1", "1-1", "a", "1"], ["XADD", "x:1", "2-1", "b", "2"],
    ["XGROUP", "CREATE", "x:1", "grp", "0"],
    ["XREADGROUP", "GROUP", "grp", "alice", "COUNT", 1, "STREAMS", "x:1", ">"],
    ["XADD", "x:1", "3-1", "c", "3"], ["XTRIM", "x:1", "MAXLEN", 5],
    ["COPY", "s:1", "s:copy"], ["RENAME", "m:2", "m:renamed"], ["SET", "mv", "x"],
    ["MOVE", "mv", 1], ["EXPIRE", "h:1", 7000], ["PEXPIREAT", "l:2", 4102444800000],
    ["EVAL", "redis.call('HINCRBYFLOAT', KEYS[1], 'f', '0.5') "
             "return redis.call('INCRBYFLOAT', KEYS[2], '0.25')", 2, "h:lua", "s:lua"],
    ["FUNCTION", "LOAD",
     "#!lua name=kvtest\nredis.register_function('bump', function(keys, args) "
     "return redis.call('INCRBY', keys[1], args[1]) end)"],
    ["FCALL", "bump", 1, "s:fcall", 3],
]

# Commands for the second and third database (SELECT travels with the stream).
OTHER_DB: list[list[Any]] = [["SET", "db2:k", "v"], ["HSET", "db2:h", "f", "v"],
                             ["ZADD", "db2:z", 1, "m"]]


def dump_restore(source: ServerProcess) -> None:
    """DUMP a value on the source and RESTORE it under another name there: the stream
    carries a RESTORE whose payload has the source's RDB version."""
    client = source.client()
    client.hset("dump:src", mapping={"a": "1", "b": "2"})
    client.zadd("dump:zsrc", {"x": 1.5})
    for key in ("dump:src", "dump:zsrc"):
        payload = raw_command(client, "DUMP", key)
        raw_command(client, "RESTORE", key.replace("src", "copy"), 0, payload)
        raw_command(client, "RESTORE", key.replace("src", "ttl"), 600000, payload)
