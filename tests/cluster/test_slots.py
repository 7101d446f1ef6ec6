"""key_slot agrees with the server's CLUSTER KEYSLOT: hash tags, empty tags, binary keys."""

from __future__ import annotations

import random
from collections.abc import Callable

from migrate.endpoint import raw_command
from migrate.lab.cluster import ClusterHandle
from migrate.protocol.cluster.slots import SLOTS, crc16, crc16_py, hash_tag, key_slot


def test_known_values() -> None:
    assert crc16(b"123456789") == crc16_py(b"123456789") == 0x31C3
    assert key_slot(b"foo") == 12182  # the values the Redis cluster spec and docs give
    assert key_slot(b"") == 0
    assert key_slot("{user1000}.following") == key_slot(b"{user1000}.followers")


def test_hash_tag_rules() -> None:
    assert hash_tag(b"{user1000}.following") == b"user1000"
    assert hash_tag(b"foo{}{bar}") == b"foo{}{bar}"  # the first tag is empty: whole key
    assert hash_tag(b"foo{{bar}}zap") == b"{bar"
    assert hash_tag(b"foo{bar}{zap}") == b"bar"
    assert hash_tag(b"foo{bar") == b"foo{bar"
    assert hash_tag(b"}foo{bar}") == b"bar"


def _keys(count: int) -> list[bytes]:
    rng = random.Random(16384)
    keys: list[bytes] = [b"", b"{}", b"{", b"}", b"}{", b"{}{}", b"{{}}", b"{a}", b"a{b}c{d}",
                         b"\x00", b"{\x00}", b"\xff{\xfe}\xfd", "ключ{ü}".encode()]
    shapes: list[Callable[[], bytes]] = [
        lambda: f"user:{rng.randrange(10**9)}".encode(),
        lambda: f"{{user{rng.randrange(1000)}}}:{rng.randrange(100)}".encode(),
        lambda: f"x{{}}{rng.randrange(10**6)}".encode(),  # empty tag: the whole key counts
        lambda: f"{{}}{{t{rng.randrange(99)}}}".encode(),
        lambda: f"a{{b{rng.randrange(99)}".encode(),  # no closing brace
        lambda: rng.randbytes(rng.randrange(1, 40)),  # binary, braces included by chance
        lambda: rng.randbytes(5) + b"{" + rng.randbytes(3) + b"}" + rng.randbytes(5),
    ]
    while len(keys) < count:
        keys.append(rng.choice(shapes)())
    return keys


def test_key_slot_matches_cluster_keyslot(lab_cluster: Callable[..., ClusterHandle]) -> None:
    handle = lab_cluster("valkey-9", shards=1)
    keys = _keys(2000)
    client = handle.nodes[0].client()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("CLUSTER", "KEYSLOT", key)
    expected = [int(v) for v in pipe.execute()]
    mismatches = [(k, key_slot(k), e) for k, e in zip(keys, expected, strict=True)
                  if key_slot(k) != e]
    assert mismatches == []
    assert len(set(expected)) > 1000 and all(0 <= s < SLOTS for s in expected)
    # the pure-Python CRC is the same function
    assert all(crc16_py(hash_tag(k)) % SLOTS == e for k, e in zip(keys, expected, strict=True))
    # and Redis 7.0 hashes the same way
    assert int(raw_command(lab_cluster("redis-7.0", shards=1).nodes[0].client(),
                           "CLUSTER", "KEYSLOT", b"\xff{\xfe}\xfd")) == key_slot(b"\xfe")
