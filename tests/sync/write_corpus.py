"""The write-command corpus of the every-write matrix (tests/sync/test_write_matrix.py): one
case per command that a source version's own COMMAND INFO flags ``write``
(checks/data/write_commands.json), or a reviewed exclusion with its reason
(tests/sync/write_exclusions.toml).

A case is the commands a client runs on the source: the command under test, after what it
needs (a list to pop from, a stream group to read with). Every key of a case carries the hash
tag of its command (``{lpush}:l``), so the comparison can name the command whose keys differ
and a cluster target takes each case on one node. Times are relative or near (Dragonfly
refuses expiries more than ~8.5 years ahead: a test of its own). Databases: 0, 1 (MOVE,
COPY ... DB), 4 and 5 (SWAPDB), 9 (FLUSHDB).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.endpoint import raw_command
from migrate.keyspec import write_commands

EXCLUSIONS_FILE = Path(__file__).with_name("write_exclusions.toml")

Command = list[Any]
# a case: commands run in db 0 ("SELECT n" switches), or a function of a client of db 0
Case = list[Command] | Callable[[Any], None]


def tag(name: str) -> str:
    return "{" + name.replace("|", "-") + "}"


def _in_an_hour_ms() -> int:
    return int(time.time() * 1000) + 3_600_000


LUA_LIB = ("#!lua name=kvlib_{n}\nredis.register_function('bump_{n}', function(keys, args) "
           "return redis.call('INCRBY', keys[1], args[1]) end)")


def _function_restore(client: Any) -> None:
    raw_command(client, "FUNCTION", "LOAD", LUA_LIB.format(n="restored"))
    payload = raw_command(client, "FUNCTION", "DUMP")
    raw_command(client, "FUNCTION", "DELETE", "kvlib_restored")
    raw_command(client, "FUNCTION", "RESTORE", payload, "REPLACE")


def _restore(client: Any) -> None:
    t = tag("restore")
    client.hset(f"{t}:src", mapping={"a": "1", "b": "2"})
    client.zadd(f"{t}:zsrc", {"x": 1.5})
    for key in (f"{t}:src", f"{t}:zsrc"):
        payload = raw_command(client, "DUMP", key)
        raw_command(client, "RESTORE", key + ":copy", 0, payload)
        raw_command(client, "RESTORE", key + ":ttl", 600000, payload)


def _cases() -> dict[str, Case]:
    c: dict[str, Case] = {}

    def k(name: str, suffix: str = "k") -> str:
        return f"{tag(name)}:{suffix}"

    def add(name: str, *commands: Command) -> None:
        c[name] = list(commands)

    # strings
    add("set", ["SET", k("set"), "v"], ["SET", k("set", "px"), "v", "PX", 900000],
        ["SET", k("set", "keep"), "v", "EX", 100], ["SET", k("set", "keep"), "w", "KEEPTTL"])
    add("setex", ["SETEX", k("setex"), 900, "v"])
    add("psetex", ["PSETEX", k("psetex"), 900000, "v"])
    add("setnx", ["SETNX", k("setnx"), "v"], ["SETNX", k("setnx"), "w"])
    add("setrange", ["SET", k("setrange"), "hello"], ["SETRANGE", k("setrange"), 1, "EY"])
    add("append", ["SET", k("append"), "a"], ["APPEND", k("append"), "b"])
    add("getset", ["SET", k("getset"), "a"], ["GETSET", k("getset"), "b"])
    add("getdel", ["SET", k("getdel"), "a"], ["SET", k("getdel", "kept"), "b"],
        ["GETDEL", k("getdel")])
    add("getex", ["SET", k("getex"), "a"], ["GETEX", k("getex"), "EX", 5000],
        ["SET", k("getex", "p"), "a", "EX", 50], ["GETEX", k("getex", "p"), "PERSIST"])
    add("incr", ["INCR", k("incr")])
    add("incrby", ["INCRBY", k("incrby"), 7])
    add("incrbyfloat", ["INCRBYFLOAT", k("incrbyfloat"), "1.25"])
    add("decr", ["DECR", k("decr")])
    add("decrby", ["DECRBY", k("decrby"), 3])
    add("mset", ["MSET", k("mset", "a"), "1", k("mset", "b"), "2"])
    add("msetnx", ["MSETNX", k("msetnx", "a"), "1", k("msetnx", "b"), "2"])
    add("msetex", ["MSETEX", 2, k("msetex", "a"), "1", k("msetex", "b"), "2", "PX", 900000])
    add("delifeq", ["SET", k("delifeq"), "v"], ["SET", k("delifeq", "kept"), "v"],
        ["DELIFEQ", k("delifeq"), "v"], ["DELIFEQ", k("delifeq", "kept"), "other"])
    add("setbit", ["SETBIT", k("setbit"), 7, 1])
    add("bitfield", ["BITFIELD", k("bitfield"), "SET", "u8", 0, 200, "INCRBY", "u8", 0, 100])
    add("bitop", ["SETBIT", k("bitop", "a"), 1, 1], ["SETBIT", k("bitop", "b"), 9, 1],
        ["BITOP", "OR", k("bitop", "or"), k("bitop", "a"), k("bitop", "b")])
    # keys
    add("del", ["SET", k("del"), "v"], ["SET", k("del", "kept"), "v"], ["DEL", k("del")])
    add("unlink", ["SET", k("unlink"), "v"], ["UNLINK", k("unlink")])
    add("expire", ["SET", k("expire"), "v"], ["EXPIRE", k("expire"), 7000])
    add("pexpire", ["SET", k("pexpire"), "v"], ["PEXPIRE", k("pexpire"), 7000000])
    add("expireat", ["SET", k("expireat"), "v"],
        ["EXPIREAT", k("expireat"), _in_an_hour_ms() // 1000])
    add("pexpireat", ["SET", k("pexpireat"), "v"],
        ["PEXPIREAT", k("pexpireat"), _in_an_hour_ms()])
    add("persist", ["SET", k("persist"), "v", "EX", 100], ["PERSIST", k("persist")])
    add("rename", ["SET", k("rename", "a"), "v"], ["RENAME", k("rename", "a"), k("rename", "b")])
    add("renamenx", ["SET", k("renamenx", "a"), "v"],
        ["RENAMENX", k("renamenx", "a"), k("renamenx", "b")])
    add("copy", ["SET", k("copy", "a"), "v"], ["COPY", k("copy", "a"), k("copy", "b")],
        ["COPY", k("copy", "a"), k("copy", "c"), "DB", 1])
    add("move", ["SET", k("move"), "v"], ["MOVE", k("move"), 1])
    add("swapdb", ["SELECT", 4], ["SET", k("swapdb", "four"), "4"], ["SELECT", 5],
        ["SET", k("swapdb", "five"), "5"], ["SWAPDB", 4, 5])
    add("flushdb", ["SELECT", 9], ["SET", k("flushdb"), "v"], ["FLUSHDB"])
    c["restore"] = _restore
    # hashes
    add("hset", ["HSET", k("hset"), "f", "1", "g", "2"])
    add("hmset", ["HMSET", k("hmset"), "f", "1", "g", "2"])
    add("hsetnx", ["HSETNX", k("hsetnx"), "f", "1"], ["HSETNX", k("hsetnx"), "f", "2"])
    add("hdel", ["HSET", k("hdel"), "f", "1", "g", "2"], ["HDEL", k("hdel"), "f"])
    add("hincrby", ["HINCRBY", k("hincrby"), "f", 5])
    add("hincrbyfloat", ["HSET", k("hincrbyfloat"), "f", "1.5"],
        ["HINCRBYFLOAT", k("hincrbyfloat"), "f", "2.25"])
    add("hsetex", ["HSETEX", k("hsetex"), "FIELDS", 1, "a", "b"],
        ["HSETEX", k("hsetex"), "KEEPTTL", "FIELDS", 1, "c", "d"],
        ["HSETEX", k("hsetex", "ttl"), "PX", 900000, "FIELDS", 1, "a", "b"])
    add("hgetdel", ["HSET", k("hgetdel"), "a", "1", "b", "2"],
        ["HGETDEL", k("hgetdel"), "FIELDS", 1, "a"])
    add("hgetex", ["HSET", k("hgetex"), "a", "1", "b", "2"],
        ["HGETEX", k("hgetex"), "PERSIST", "FIELDS", 1, "a"],
        ["HGETEX", k("hgetex"), "EX", 700, "FIELDS", 1, "b"])
    add("hexpire", ["HSET", k("hexpire"), "a", "1", "b", "2"],
        ["HEXPIRE", k("hexpire"), 800, "FIELDS", 1, "a"])
    add("hpexpire", ["HSET", k("hpexpire"), "a", "1", "b", "2"],
        ["HPEXPIRE", k("hpexpire"), 800000, "FIELDS", 1, "a"])
    add("hexpireat", ["HSET", k("hexpireat"), "a", "1"],
        ["HEXPIREAT", k("hexpireat"), _in_an_hour_ms() // 1000, "FIELDS", 1, "a"])
    add("hpexpireat", ["HSET", k("hpexpireat"), "a", "1"],
        ["HPEXPIREAT", k("hpexpireat"), _in_an_hour_ms(), "FIELDS", 1, "a"])
    add("hpersist", ["HSET", k("hpersist"), "a", "1", "b", "2"],
        ["HEXPIRE", k("hpersist"), 800, "FIELDS", 2, "a", "b"],
        ["HPERSIST", k("hpersist"), "FIELDS", 1, "a"])
    # lists
    add("lpush", ["LPUSH", k("lpush"), "a", "b"])
    add("rpush", ["RPUSH", k("rpush"), "a", "b"])
    add("lpushx", ["RPUSH", k("lpushx"), "a"], ["LPUSHX", k("lpushx"), "b"])
    add("rpushx", ["RPUSH", k("rpushx"), "a"], ["RPUSHX", k("rpushx"), "b"])
    add("linsert", ["RPUSH", k("linsert"), "a", "c"],
        ["LINSERT", k("linsert"), "BEFORE", "c", "b"])
    add("lset", ["RPUSH", k("lset"), "a", "b"], ["LSET", k("lset"), 0, "z"])
    add("lrem", ["RPUSH", k("lrem"), "a", "b", "a"], ["LREM", k("lrem"), 1, "a"])
    add("ltrim", ["RPUSH", k("ltrim"), "a", "b", "c"], ["LTRIM", k("ltrim"), 0, 1])
    add("lpop", ["RPUSH", k("lpop"), "a", "b", "c"], ["LPOP", k("lpop")],
        ["LPOP", k("lpop"), 1])
    add("rpop", ["RPUSH", k("rpop"), "a", "b", "c"], ["RPOP", k("rpop"), 2])
    add("lmpop", ["RPUSH", k("lmpop"), "a", "b", "c"],
        ["LMPOP", 1, k("lmpop"), "LEFT", "COUNT", 2])
    add("blpop", ["RPUSH", k("blpop"), "a", "b"], ["BLPOP", k("blpop"), "0.1"])
    add("brpop", ["RPUSH", k("brpop"), "a", "b"], ["BRPOP", k("brpop"), "0.1"])
    add("blmpop", ["RPUSH", k("blmpop"), "a", "b", "c"],
        ["BLMPOP", "0.1", 1, k("blmpop"), "RIGHT", "COUNT", 2])
    add("rpoplpush", ["RPUSH", k("rpoplpush", "s"), "a", "b"],
        ["RPOPLPUSH", k("rpoplpush", "s"), k("rpoplpush", "d")])
    add("brpoplpush", ["RPUSH", k("brpoplpush", "s"), "a", "b"],
        ["BRPOPLPUSH", k("brpoplpush", "s"), k("brpoplpush", "d"), "0.1"])
    add("lmove", ["RPUSH", k("lmove", "s"), "a", "b"],
        ["LMOVE", k("lmove", "s"), k("lmove", "d"), "LEFT", "RIGHT"])
    add("blmove", ["RPUSH", k("blmove", "s"), "a", "b"],
        ["BLMOVE", k("blmove", "s"), k("blmove", "d"), "RIGHT", "LEFT", "0.1"])
    add("sort", ["RPUSH", k("sort"), 3, 1, 2], ["SORT", k("sort"), "STORE", k("sort", "d")])
    # sets
    add("sadd", ["SADD", k("sadd"), "a", "b"])
    add("srem", ["SADD", k("srem"), "a", "b"], ["SREM", k("srem"), "a"])
    add("spop", ["SADD", k("spop"), "a", "b", "c"], ["SPOP", k("spop")],
        ["SPOP", k("spop"), 1])
    add("smove", ["SADD", k("smove", "a"), "x", "y"],
        ["SMOVE", k("smove", "a"), k("smove", "b"), "x"])
    for store in ("sinterstore", "sunionstore", "sdiffstore"):
        add(store, ["SADD", k(store, "a"), "x", "y"], ["SADD", k(store, "b"), "y", "z"],
            [store.upper(), k(store, "d"), k(store, "a"), k(store, "b")])
    # sorted sets
    add("zadd", ["ZADD", k("zadd"), 1, "a", 2.5, "b"], ["ZADD", k("zadd"), "INCR", 1, "a"])
    add("zincrby", ["ZINCRBY", k("zincrby"), 2.5, "a"])
    add("zrem", ["ZADD", k("zrem"), 1, "a", 2, "b"], ["ZREM", k("zrem"), "a"])
    add("zpopmin", ["ZADD", k("zpopmin"), 1, "a", 2, "b"], ["ZPOPMIN", k("zpopmin")])
    add("zpopmax", ["ZADD", k("zpopmax"), 1, "a", 2, "b"], ["ZPOPMAX", k("zpopmax")])
    add("bzpopmin", ["ZADD", k("bzpopmin"), 1, "a", 2, "b"], ["BZPOPMIN", k("bzpopmin"), "0.1"])
    add("bzpopmax", ["ZADD", k("bzpopmax"), 1, "a", 2, "b"], ["BZPOPMAX", k("bzpopmax"), "0.1"])
    add("zmpop", ["ZADD", k("zmpop"), 1, "a", 2, "b", 3, "c"],
        ["ZMPOP", 1, k("zmpop"), "MIN", "COUNT", 2])
    add("bzmpop", ["ZADD", k("bzmpop"), 1, "a", 2, "b"], ["BZMPOP", "0.1", 1, k("bzmpop"), "MAX"])
    add("zremrangebyscore", ["ZADD", k("zremrangebyscore"), 1, "a", 2, "b"],
        ["ZREMRANGEBYSCORE", k("zremrangebyscore"), 0, 1])
    add("zremrangebyrank", ["ZADD", k("zremrangebyrank"), 1, "a", 2, "b"],
        ["ZREMRANGEBYRANK", k("zremrangebyrank"), 0, 0])
    add("zremrangebylex", ["ZADD", k("zremrangebylex"), 0, "a", 0, "b"],
        ["ZREMRANGEBYLEX", k("zremrangebylex"), "[a", "[a"])
    add("zrangestore", ["ZADD", k("zrangestore"), 1, "a", 2, "b"],
        ["ZRANGESTORE", k("zrangestore", "d"), k("zrangestore"), 0, 0])
    for store in ("zunionstore", "zinterstore", "zdiffstore"):
        add(store, ["ZADD", k(store, "a"), 1, "x", 2, "y"], ["ZADD", k(store, "b"), 3, "y"],
            [store.upper(), k(store, "d"), 2, k(store, "a"), k(store, "b")])
    # HyperLogLogs and geo
    add("pfadd", ["PFADD", k("pfadd"), "a", "b", "c"])
    add("pfmerge", ["PFADD", k("pfmerge", "a"), "a"], ["PFADD", k("pfmerge", "b"), "b"],
        ["PFMERGE", k("pfmerge", "m"), k("pfmerge", "a"), k("pfmerge", "b")])
    add("geoadd", ["GEOADD", k("geoadd"), 13.36, 38.11, "Palermo"])
    geo = ["GEOADD", "", 13.36, 38.11, "Palermo", 15.08, 37.5, "Catania"]
    add("geosearchstore", [geo[0], k("geosearchstore"), *geo[2:]],
        ["GEOSEARCHSTORE", k("geosearchstore", "d"), k("geosearchstore"), "FROMLONLAT", 15, 37,
         "BYRADIUS", 200, "km"])
    add("georadius", [geo[0], k("georadius"), *geo[2:]],
        ["GEORADIUS", k("georadius"), 15, 37, 200, "km", "STORE", k("georadius", "d")])
    add("georadiusbymember", [geo[0], k("georadiusbymember"), *geo[2:]],
        ["GEORADIUSBYMEMBER", k("georadiusbymember"), "Palermo", 300, "km", "STORE",
         k("georadiusbymember", "d")])
    # streams
    s = k("xadd")
    add("xadd", ["XADD", s, "1-1", "a", "1"], ["XADD", s, "*", "b", "2"],
        ["XADD", s, "MAXLEN", 5, "*", "c", "3"])
    add("xdel", ["XADD", k("xdel"), "1-1", "a", "1"], ["XADD", k("xdel"), "2-1", "b", "2"],
        ["XDEL", k("xdel"), "1-1"])
    add("xtrim", ["XADD", k("xtrim"), "1-1", "a", "1"], ["XADD", k("xtrim"), "2-1", "b", "2"],
        ["XTRIM", k("xtrim"), "MAXLEN", 1])
    add("xsetid", ["XADD", k("xsetid"), "1-1", "a", "1"], ["XSETID", k("xsetid"), "5-0"])

    def group(name: str, *rest: Command) -> None:
        x = k(name)
        add(name, ["XADD", x, "1-1", "a", "1"], ["XADD", x, "2-1", "b", "2"],
            ["XGROUP", "CREATE", x, "g", "0"], *rest)

    group("xgroup|create")
    group("xreadgroup", ["XREADGROUP", "GROUP", "g", "alice", "COUNT", 1, "STREAMS",
                         k("xreadgroup"), ">"])
    group("xack", ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", k("xack"), ">"],
          ["XACK", k("xack"), "g", "1-1"])
    group("xclaim", ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", k("xclaim"), ">"],
          ["XCLAIM", k("xclaim"), "g", "bob", 0, "1-1"])
    group("xautoclaim", ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", k("xautoclaim"), ">"],
          ["XAUTOCLAIM", k("xautoclaim"), "g", "bob", 0, "0-0", "COUNT", 1])
    group("xgroup|createconsumer", ["XGROUP", "CREATECONSUMER", k("xgroup|createconsumer"),
                                    "g", "carol"])
    group("xgroup|delconsumer", ["XGROUP", "CREATECONSUMER", k("xgroup|delconsumer"), "g",
                                 "carol"],
          ["XGROUP", "DELCONSUMER", k("xgroup|delconsumer"), "g", "carol"])
    group("xgroup|destroy", ["XGROUP", "CREATE", k("xgroup|destroy"), "g2", "$"],
          ["XGROUP", "DESTROY", k("xgroup|destroy"), "g2"])
    group("xgroup|setid", ["XGROUP", "SETID", k("xgroup|setid"), "g", "1-1"])
    # vector sets (Redis 8)
    add("vadd", ["VADD", k("vadd"), "VALUES", 2, 1, 2, "e1"])
    add("vrem", ["VADD", k("vrem"), "VALUES", 2, 1, 2, "e1"],
        ["VADD", k("vrem"), "VALUES", 2, 3, 4, "e2"], ["VREM", k("vrem"), "e1"])
    add("vsetattr", ["VADD", k("vsetattr"), "VALUES", 2, 1, 2, "e1"],
        ["VSETATTR", k("vsetattr"), "e1", '{"a": 1}'])
    # functions (FUNCTION FLUSH first: it empties the libraries the others load)
    add("function|flush", ["FUNCTION", "LOAD", LUA_LIB.format(n="flushed")],
        ["FUNCTION", "FLUSH"])
    add("function|load", ["FUNCTION", "LOAD", LUA_LIB.format(n="loaded")],
        ["FCALL", "bump_loaded", 1, k("function|load"), 3])
    add("function|delete", ["FUNCTION", "LOAD", LUA_LIB.format(n="deleted")],
        ["FUNCTION", "DELETE", "kvlib_deleted"])
    c["function|restore"] = _function_restore
    return c


CORPUS: dict[str, Case] = _cases()
# run first: they empty what they reach (the function libraries)
FIRST = ("function|flush",)


def exclusions() -> dict[str, str]:
    """{command: why it has no case}, from the reviewed exclusions file."""
    data = tomllib.loads(EXCLUSIONS_FILE.read_text())
    return {name: entry["reason"] for name, entry in data["command"].items()}


def server_writes(server: str) -> list[str]:
    """The write commands of a lab server ("flavor version") from its own COMMAND INFO."""
    return write_commands()[server]


def coverage(server: str) -> tuple[int, int, list[str]]:
    """(commands with a case, write commands of the server, those with neither a case nor
    an exclusion)."""
    writes = server_writes(server)
    excluded = exclusions()
    covered = [w for w in writes if w in CORPUS]
    return len(covered), len(writes), [w for w in writes if w not in CORPUS and
                                        w not in excluded]


def cases_for(server: str) -> dict[str, Case]:
    """The corpus cases a source ("flavor version") can run: its write commands with a
    case, FIRST ones first."""
    writes = set(server_writes(server))
    names = [n for n in FIRST if n in writes] + [n for n in CORPUS if n in writes
                                                   and n not in FIRST]
    return {n: CORPUS[n] for n in names}


def run_case(client_of_db: Callable[[int], Any], case: Case) -> None:
    """Run one case on the source as a client would (an error is the corpus's bug)."""
    if callable(case):
        case(client_of_db(0))
        return
    client = client_of_db(0)
    for cmd in case:
        if cmd[0] == "SELECT":
            client = client_of_db(int(cmd[1]))
            continue
        raw_command(client, *cmd)


def command_of_key(key: bytes) -> str | None:
    """The corpus command whose case wrote ``key`` (by its hash tag)."""
    if not key.startswith(b"{") or b"}" not in key:
        return None
    return key[1:key.index(b"}")].decode().replace("-", "|")
