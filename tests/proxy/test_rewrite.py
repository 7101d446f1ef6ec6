"""The RDB rewriter on RDB files written by real lab servers: the rewritten file loads in the
target at startup and the data is identical key by key; what the target cannot load comes
out as commands; module values are refused before a byte is written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from migrate.apply.commands import Command
from migrate.apply.target import Target
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.proxy.plan import parse_reason
from migrate.proxy.rewrite import (
    RewriteRefused,
    pass_through_rdb,
    rewrite_rdb,
    target_rdb_header,
)
from migrate.rdb import RdbFormatError, RdbReader, crc64
from migrate.serverinfo import identify
from migrate.verify.runner import VerifyOptions, verify


def _saved_rdb(server: ServerProcess) -> bytes:
    client = server.client()
    client.save()
    name = client.config_get("dbfilename")["dbfilename"]
    return (Path(server.directory) / name).read_bytes()


def _rewrite(rdb: bytes, target: Target) -> tuple[bytes, list[Command], object]:
    out = io.BytesIO()
    commands: list[Command] = []
    stats = rewrite_rdb(io.BytesIO(rdb), out.write, target, commands.append)
    return out.getvalue(), commands, stats


def _load_into(lab: Fleet, spec: str, rdb: bytes, tmp_path: Path) -> ServerProcess:
    folder = tmp_path / f"load-{spec}"
    folder.mkdir()
    (folder / "rewritten.rdb").write_bytes(rdb)
    return lab.start(spec, extra_args=["--dir", str(folder), "--dbfilename", "rewritten.rdb"])


def _target(server: ServerProcess) -> Target:
    return Target(identify(server.client().info("server")))


def _assert_identical(source: ServerProcess, target: ServerProcess) -> None:
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.keys_checked > 1000
    assert report.ok, report.to_dict()


def test_redis70_rdb_loads_in_valkey80(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0")
    seed(source.endpoint, keys=3000, seed_value=3)
    rdb = _saved_rdb(source)
    valkey_probe = lab.start("valkey-8.0")
    out, commands, stats = _rewrite(rdb, _target(valkey_probe))
    valkey_probe.stop()
    assert out[:9] == b"REDIS0010" and commands == []
    assert stats.keys_passed == 3000 and stats.keys_out_of_band == 0  # type: ignore[attr-defined]
    assert int.from_bytes(out[-8:], "little") == crc64(out[:-8])
    target = _load_into(lab, "valkey-8.0", out, tmp_path)
    _assert_identical(source, target)


def test_redis8_rdb_rewritten_to_version_11_loads_in_valkey80(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    seed(source.endpoint, keys=3000, seed_value=4)
    source.client().delete("seed:hash:field-ttl")
    client = source.client()
    client.execute_command("FUNCTION", "LOAD",
                           "#!lua name=kvmlib\nredis.register_function('kvm_one', "
                           "function() return 1 end)")
    rdb = _saved_rdb(source)
    assert rdb[:9] == b"REDIS0012"
    out, commands, _ = _rewrite(rdb, Target.named("valkey", "8.0.1"))
    assert out[:9] == b"REDIS0011" and commands == []
    assert len(out) == len(rdb)  # only the header and the checksum changed
    assert int.from_bytes(out[-8:], "little") == crc64(out[:-8])
    target = _load_into(lab, "valkey-8.0", out, tmp_path)
    _assert_identical(source, target)
    assert target.client().execute_command("FCALL", "kvm_one", 0) == 1


def test_redis8_field_ttl_hash_out_of_band_for_valkey9(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    seed(source.endpoint, keys=3000, seed_value=5)
    client = source.client()
    client.select(1)
    client.hset("oob:db1", mapping={"a": "1", "b": "2", "c": "3"})
    client.execute_command("HPEXPIRE", "oob:db1", 3_600_000, "FIELDS", 1, "a")
    client.pexpire("oob:db1", 7_200_000)
    rdb = _saved_rdb(source)
    out, commands, stats = _rewrite(rdb, Target.named("valkey", "9.1.2"))
    assert out[:9] == b"REDIS0011"
    assert stats.keys_out_of_band == 2  # type: ignore[attr-defined]
    names = [c[0] for c in commands]
    assert names.count("SELECT") == 2 and "HPEXPIREAT" in names and "PEXPIREAT" in names
    records = list(RdbReader(io.BytesIO(out)).records())  # the output reads back, CRC ok
    assert not any(getattr(r, "key", None) in (b"seed:hash:field-ttl", b"oob:db1")
                   for r in records)
    target = _load_into(lab, "valkey-9", out, tmp_path)
    tclient = target.client()
    for cmd in commands:
        tclient.execute_command(*cmd)
    _assert_identical(source, target)
    tclient.execute_command("SELECT", 0)
    assert tclient.execute_command("HTTL", "seed:hash:field-ttl", "FIELDS", 1, "f0")[0] > 0


def test_field_ttl_hash_refused_for_valkey8(lab: Fleet) -> None:
    source = lab.start("redis-8")
    seed(source.endpoint, keys=200, seed_value=6)
    rdb = _saved_rdb(source)
    written: list[bytes] = []
    with pytest.raises(RewriteRefused, match="field TTLs"):
        rewrite_rdb(io.BytesIO(rdb), written.append, Target.named("valkey", "8.0.1"),
                    lambda cmd: None)


def test_vector_set_refused(lab: Fleet) -> None:
    source = lab.start("redis-8")
    client = source.client()
    client.set("plain", "x")
    client.execute_command("VADD", "vec", "VALUES", 3, 0.1, 0.2, 0.3, "item1")
    rdb = _saved_rdb(source)
    for target in (Target.named("valkey", "9.1.2"), Target.named("dragonfly", "1.40")):
        with pytest.raises(RewriteRefused, match="module value"):
            rewrite_rdb(io.BytesIO(rdb), lambda data: None, target, lambda cmd: None)


def test_headers() -> None:
    assert target_rdb_header("REDIS", 12, Target.named("valkey", "8.0.1")) == b"REDIS0011"
    assert target_rdb_header("REDIS", 10, Target.named("valkey", "9.1.2")) == b"REDIS0010"
    assert target_rdb_header("REDIS", 12, Target.named("valkey", "9.1.2")) == b"REDIS0011"
    assert target_rdb_header("REDIS", 12, Target.named("dragonfly", "1.40")) == b"REDIS0012"
    assert target_rdb_header("VALKEY", 80, Target.named("valkey", "9.1.2")) == b"VALKEY080"


def test_pass_through_loads_in_valkey80_and_checks_the_source_checksum(
        lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8")
    seed(source.endpoint, keys=3000, seed_value=7)
    source.client().delete("seed:hash:field-ttl")
    rdb = _saved_rdb(source)
    out = io.BytesIO()
    stats = pass_through_rdb(io.BytesIO(rdb), out.write, Target.named("valkey", "8.0.1"))
    data = out.getvalue()
    assert data[:9] == b"REDIS0011" and data[9:-8] == rdb[9:-8] and data[-8:] == bytes(8)
    assert stats.bytes_in == len(rdb) == stats.bytes_out
    target = _load_into(lab, "valkey-8.0", data, tmp_path)
    _assert_identical(source, target)
    damaged = rdb[:5000] + bytes([rdb[5000] ^ 1]) + rdb[5001:]
    with pytest.raises(RdbFormatError, match="bad checksum"):
        pass_through_rdb(io.BytesIO(damaged), lambda b: None, Target.named("valkey", "8.0.1"))
    with pytest.raises(RdbFormatError, match="truncated"):
        pass_through_rdb(io.BytesIO(rdb[:4]), lambda b: None, Target.named("valkey", "8.0.1"))


def test_parse_reason_from_the_source(lab: Fleet) -> None:
    valkey8 = Target.named("valkey", "8.0.1")
    r7 = lab.start("redis-7.0")
    seed(r7.endpoint, keys=300, seed_value=8)
    assert parse_reason(r7.endpoint, _target(r7).identity, valkey8) is None
    r8 = lab.start("redis-8")
    client = r8.client()
    client.set("a", "b")
    assert parse_reason(r8.endpoint, _target(r8).identity, valkey8) is None
    client.select(2)
    client.execute_command("VADD", "vec", "VALUES", 2, 0.5, 0.25, "a")
    assert parse_reason(r8.endpoint, _target(r8).identity, valkey8) == \
        "db2 holds vectorset values"
    client.delete("vec")
    client.hset("h", "f", "v")
    client.execute_command("HEXPIRE", "h", 100, "FIELDS", 1, "f")
    assert parse_reason(r8.endpoint, _target(r8).identity, valkey8) == \
        "db2 holds hashes with field TTLs"


def test_field_ttl_hash_for_dragonfly_as_hexpire(lab: Fleet) -> None:
    """Dragonfly cannot run here: the rules are data (docs/compatibility.md "Hash field TTLs"); this
    checks the rewriter applies them to a real Redis 8 RDB."""
    source = lab.start("redis-8")
    seed(source.endpoint, keys=300, seed_value=9)
    rdb = _saved_rdb(source)
    out, commands, stats = _rewrite(rdb, Target.named("dragonfly", "1.40"))
    assert out[:9] == b"REDIS0012"  # Dragonfly reads RDB 12
    assert stats.keys_out_of_band == 1  # type: ignore[attr-defined]
    names = [c[0] for c in commands]
    assert names[:2] == ["SELECT", "HSET"] and "HEXPIRE" in names and "HPEXPIREAT" not in names
    list(RdbReader(io.BytesIO(out)).records())  # reads back, checksum verified
