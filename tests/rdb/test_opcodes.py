"""Functions, module values, module aux, slot info, idle and frequency, from real servers."""

from __future__ import annotations

import os
import time

from migrate.lab.cluster import start_lone_node
from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from migrate.rdb import Aux, Entry, Function, ModuleValue, SlotInfo, make_payload, read_file

LIB = "#!lua name=mylib\nredis.register_function('f1', function() return 1 end)"


def _cluster_ready(server: ServerProcess) -> None:
    c = server.client(0)
    c.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.monotonic() + 20
    while b"cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "cluster did not come up"
        time.sleep(0.1)


def test_redis8_function_module_value_freq_and_slot_info(lab: Fleet) -> None:
    server = start_lone_node(lab, "redis-8", extra_args=["--maxmemory-policy", "allkeys-lfu"])
    _cluster_ready(server)
    c = server.client(0)
    c.execute_command("FUNCTION", "LOAD", LIB)
    c.execute_command("VADD", "vs", "VALUES", 3, 1, 2, 3, "e1")
    c.set("a", 1)
    for _ in range(20):
        c.get("a")
    c.save()
    records = list(read_file(os.path.join(server.directory, "dump.rdb")))
    functions = [r for r in records if isinstance(r, Function)]
    assert [f.name for f in functions] == ["mylib"] and functions[0].code.decode() == LIB
    entries = {r.key: r for r in records if isinstance(r, Entry)}
    vs = entries[b"vs"]
    assert vs.kind == "module" and isinstance(vs.value, ModuleValue)
    assert vs.value.name == "vectorset"
    assert make_payload(vs.raw or b"", 12) == c.dump("vs")
    assert entries[b"a"].freq is not None and entries[b"a"].freq > 0
    slots = [r for r in records if isinstance(r, SlotInfo)]
    assert {s.slot for s in slots} == {c.execute_command("CLUSTER", "KEYSLOT", k)
                                       for k in ("a", "vs")}


def test_valkey9_cluster_slot_info_and_idle(lab: Fleet) -> None:
    server = start_lone_node(lab, "valkey-9", extra_args=["--maxmemory-policy", "allkeys-lru"])
    _cluster_ready(server)
    c = server.client(0)
    c.set("a", 1)
    c.save()
    records = list(read_file(os.path.join(server.directory, "dump.rdb")))
    entry = next(r for r in records if isinstance(r, Entry))
    assert entry.key == b"a" and entry.idle_s is not None
    slot = c.execute_command("CLUSTER", "KEYSLOT", "a")
    assert any(isinstance(r, Aux) and r.name == b"slot-info" and
               r.value.startswith(b"%d," % slot) for r in records)


def test_redis8_hashtable_hash_with_field_ttls_type_24(lab: Fleet) -> None:
    server = lab.start("redis-8", extra_args=["--hash-max-listpack-entries", "0"])
    c = server.client(0)
    c.hset("h", mapping={f"f{i}": f"v{i}" for i in range(5)})
    c.execute_command("HPEXPIREAT", "h", 4_000_000_000_000, "FIELDS", 2, "f1", "f3")
    c.execute_command("HPEXPIREAT", "h", 4_000_000_123_456, "FIELDS", 1, "f4")
    c.save()
    entry = next(r for r in read_file(os.path.join(server.directory, "dump.rdb"))
                 if isinstance(r, Entry))
    assert (entry.type_code, entry.encoding) == (24, "metadata")
    assert dict(entry.value) == {f"f{i}".encode(): f"v{i}".encode() for i in range(5)}
    assert entry.field_expires == {b"f1": 4_000_000_000_000, b"f3": 4_000_000_000_000,
                                   b"f4": 4_000_000_123_456}
