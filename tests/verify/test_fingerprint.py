"""Small collections are compared by their DUMP payloads first (migrate.verify.fingerprint):
equal payloads settle a key, different ones are compared element by element, so a value
encoded differently still matches and a real difference is still found, with the same
report as without fingerprints."""

from __future__ import annotations

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.protocol.rawconn import RawConn
from migrate.verify.compare import CompareOptions, Side, compare_batch
from migrate.verify.runner import VerifyOptions, verify
from tests.verify.replicate import replicate

FAST = dict(lag_window_s=0.1, rechecks=1)


def test_same_server_copy_differences_behind_matching_payloads_are_found(lab: Fleet) -> None:
    """Valkey 8.0 to Valkey 8.0: nearly every payload matches; the planted differences
    (each of which changes the payload) are reported as before."""
    source, target = lab.start("valkey-8.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000)
    replicate(source, target)
    assert verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST)).ok
    t = target.client()
    t.lset("seed:list:small", 3, "changed")
    t.zincrby("seed:zset:small", 0.5, "player-2")
    t.hset("seed:hash:small", "field-1", "other")
    t.xgroup_setid("seed:stream", "audit", "1700000000005-0")
    t.pexpire("seed:set:small", 3_600_000)  # the value is the same: only the TTL differs
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    found = {m.key.decode(): (m.kind, m.detail) for m in report.mismatches}
    assert {k: v[0] for k, v in found.items()} == {
        "seed:list:small": "value", "seed:zset:small": "value", "seed:hash:small": "value",
        "seed:stream": "stream", "seed:set:small": "ttl"}, found
    assert found["seed:list:small"][1] == "list differs at element 3"
    assert "last-delivered-id" in found["seed:stream"][1]


def test_a_value_encoded_differently_matches_and_its_type_stops_being_dumped(
        lab: Fleet) -> None:
    """Sets of the same members, small (listpack) on the source and converted to a hash
    table on the target: every payload differs, every set matches; after enough misses
    sets are no longer DUMPed, and a real difference is still found."""
    source, target = lab.start("valkey-8.0"), lab.start("valkey-8.0")
    keys = [f"set:{i}".encode() for i in range(100)]
    for key in keys:
        source.client().sadd(key, "a", "b", "c")
        target.client().sadd(key, "a", "b", "c", "x" * 200)  # too long for a listpack
        target.client().srem(key, "x" * 200)  # the hash table stays
    assert target.client().object("encoding", keys[0]) == b"hashtable"
    assert source.client().object("encoding", keys[0]) == b"listpack"
    target.client().sadd(keys[-1], "d")
    target.client().srem(keys[-1], "a")
    with RawConn(source.endpoint) as s, RawConn(target.endpoint) as t:
        src, tgt = Side(s, True, False), Side(t, True, False)
        found = compare_batch(src, tgt, 0, 0, keys, CompareOptions())
        assert [(m.key, m.kind) for m in found] == [(keys[-1], "value")]
        assert not src.dumps.worth(b"set")
        assert src.dumps.worth(b"list")


def test_stream_pending_entries_beyond_the_first_page_are_followed(lab: Fleet) -> None:
    """A short stream whose group still holds many pending entries (their entries deleted):
    the batched stream comparison reads the first page of pending entries, then follows the
    rest page by page and finds a delivery count that differs on the last page."""
    source, target = lab.start("valkey-8.0"), lab.start("valkey-8.0")
    c = source.client()
    ids = [c.xadd("s", {"n": i}, id=f"1-{i + 1}") for i in range(12)]
    c.xgroup_create("s", "g", "0")
    c.xreadgroup("g", "alice", {"s": ">"})
    c.xdel("s", *ids[:9])  # 3 entries left, 12 pending
    replicate(source, target)
    small = CompareOptions(small=5)
    with RawConn(source.endpoint) as s, RawConn(target.endpoint) as t:
        src, tgt = Side(s, True, False), Side(t, True, False)
        assert compare_batch(src, tgt, 0, 0, [b"s"], small) == []
        target.client().xclaim("s", "g", "alice", 0, [ids[-1]], retrycount=7)
        found = compare_batch(src, tgt, 0, 0, [b"s"], small)
    assert [(m.kind, m.detail) for m in found] == [
        ("stream", f"group g: pending entries differ after ({ids[-3].decode()}")], found
