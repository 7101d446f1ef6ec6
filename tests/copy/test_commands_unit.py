"""CommandBuilder as pure logic: bounds, TTLs, skips and per-target field-TTL commands."""

from __future__ import annotations

from migrate.apply.commands import ApplyOptions, CommandBuilder
from migrate.apply.target import Target
from migrate.rdb.records import Entry, StreamValue

NOW = 1_800_000_000_000


def _builder(flavor: str, version: str, **kw: object) -> CommandBuilder:
    return CommandBuilder(Target.named(flavor, version), "REDIS",
                          ApplyOptions(now_ms=lambda: NOW, **kw))  # type: ignore[arg-type]


def _hash(fields: int, expires: dict[bytes, int] | None = None, **kw: object) -> Entry:
    pairs = [(b"f%d" % i, b"v%d" % i) for i in range(fields)]
    return Entry(db=0, key=b"h", type_code=4, kind="hash", encoding="hashtable", value=pairs,
                 field_expires=expires, elements=fields, **kw)  # type: ignore[arg-type]


def test_elements_bound_splits_commands_and_ttl_comes_last() -> None:
    b = _builder("valkey", "8.0.1", max_elements=10)
    cmds = b.commands(_hash(25, expire_ms=NOW + 5000))
    assert [c[0] for c in cmds] == ["HSET", "HSET", "HSET", "PEXPIREAT"]
    assert [len(c) - 2 for c in cmds[:3]] == [20, 20, 10]
    assert cmds[-1] == ("PEXPIREAT", b"h", NOW + 5000)


def test_bytes_bound() -> None:
    b = _builder("valkey", "8.0.1", max_bytes=1000)
    e = Entry(db=0, key=b"l", type_code=1, kind="list", encoding="linkedlist",
              value=[b"x" * 300] * 10, elements=10)
    assert [len(c) - 2 for c in b.commands(e)] == [3, 3, 3, 1]


def test_field_ttls_per_target() -> None:
    expires = {b"f0": NOW + 1500, b"f1": NOW + 1500, b"f2": NOW - 1}
    valkey9 = _builder("valkey", "9.1.2").commands(_hash(4, expires))
    assert valkey9[0] == ("HSET", b"h", b"f0", b"v0", b"f1", b"v1", b"f3", b"v3")
    assert valkey9[1] == ("HPEXPIREAT", b"h", NOW + 1500, "FIELDS", 2, b"f0", b"f1")
    dragonfly = _builder("dragonfly", "1.40").commands(_hash(4, expires))
    assert dragonfly[1] == ("HEXPIRE", b"h", 2, "FIELDS", 2, b"f0", b"f1")  # rounded up
    valkey8 = _builder("valkey", "8.0.1")
    assert valkey8.commands(_hash(4, expires)) == []
    assert sum(valkey8.stats.failed.values()) == 1


def test_expired_key_and_its_later_parts_are_skipped() -> None:
    b = _builder("valkey", "9.1.2")
    first = _hash(2, expire_ms=NOW - 1, final=False)
    rest = _hash(2, expire_ms=NOW - 1, part=1, final=True)
    assert b.commands(first) == [] and b.commands(rest) == []
    assert b.stats.expired_skipped == 1 and sum(b.stats.keys.values()) == 0


def test_fast_path_uses_the_target_rdb_version() -> None:
    e = Entry(db=0, key=b"s", type_code=0, kind="string", encoding="string", value=b"v",
              raw=b"\x00\x01v", elements=1, expire_ms=NOW + 10)
    (cmd,) = _builder("valkey", "8.0.1").commands(e)
    assert cmd[:3] == ("RESTORE", b"s", NOW + 10) and cmd[3][-10:-8] == b"\x0b\x00"
    assert cmd[4:] == ("ABSTTL",)
    (cmd,) = _builder("valkey", "9.1.2", replace=True).commands(e)
    assert cmd[3][-10:-8] == (80).to_bytes(2, "little") and cmd[-1] == "REPLACE"


def test_listpack_set_is_transcoded_for_redis_7_0() -> None:
    e = Entry(db=0, key=b"s", type_code=20, kind="set", encoding="listpack", value=[b"a"],
              raw=b"\x14junk", elements=1)
    assert _builder("redis", "7.0.15").commands(e) == [("SADD", b"s", b"a")]


def test_dragonfly_stream_has_no_7_0_metadata() -> None:
    v = StreamValue(entries=[((1, 0), [(b"a", b"1")])], complete=True, length=1,
                    last_id=(1, 0), entries_added=1, max_deleted_id=(0, 0))
    e = Entry(db=0, key=b"x", type_code=21, kind="stream", encoding="listpacks-v3", value=v,
              elements=1)
    cmds = _builder("dragonfly", "1.40").commands(e)
    assert cmds == [("XADD", b"x", b"1-0", b"a", b"1"), ("XSETID", b"x", b"1-0")]
