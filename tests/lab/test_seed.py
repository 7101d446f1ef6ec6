"""``lab seed`` writes every type and encoding the server has, deterministically."""

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import census, seed

COMMON = {("string", "int"), ("string", "embstr"), ("string", "raw"), ("set", "intset"),
          ("set", "hashtable"), ("zset", "listpack"), ("zset", "skiplist"),
          ("hash", "listpack"), ("hash", "hashtable"), ("list", "quicklist"),
          ("stream", "stream")}
LISTPACK_LISTS_AND_SETS = {("list", "listpack"), ("set", "listpack")}  # Redis 7.2+, Valkey

EXPECTED = {
    "redis-7.0": COMMON,
    "redis-8": COMMON | LISTPACK_LISTS_AND_SETS | {("hash", "listpackex")},
    "valkey-8.0": COMMON | LISTPACK_LISTS_AND_SETS,
    "valkey-9": COMMON | LISTPACK_LISTS_AND_SETS,
}
FIELD_TTL = {"redis-7.0": False, "redis-8": True, "valkey-8.0": False, "valkey-9": True}


@pytest.mark.parametrize("spec", list(EXPECTED))
def test_seed_produces_every_type_and_encoding(lab: Fleet, spec: str) -> None:
    server = lab.start(spec)
    report = seed(server.endpoint, keys=5000, seed_value=7)
    assert report.keys == 5000
    counts = census(server.endpoint)
    assert sum(counts.values()) == 5000
    missing = EXPECTED[spec] - set(counts)
    assert not missing, f"{spec} lacks encodings {missing}; has {sorted(counts)}"
    assert {t for t, _ in counts} == {"string", "list", "set", "zset", "hash", "stream"}

    c0 = server.client()
    keyspace = c0.info("keyspace")
    assert set(keyspace) >= {"db0", "db1", "db2"}
    assert sum(v["keys"] for v in keyspace.values()) == 5000
    assert sum(v["expires"] for v in keyspace.values()) == report.with_ttl > 0

    # streams carry consumer groups with pending entries
    groups = {g["name"]: g for g in c0.xinfo_groups("seed:stream")}
    assert set(groups) == {b"billing", b"audit"}
    assert groups[b"billing"]["pending"] == 7  # 5 + 3 delivered, 1 acknowledged
    assert groups[b"audit"]["pending"] == 2

    # big keys
    assert c0.strlen("seed:big:string") >= 1_000_000
    assert c0.hlen("seed:big:hash") == 20000

    if FIELD_TTL[spec]:
        ttls = c0.execute_command("HPTTL", "seed:hash:field-ttl", "FIELDS", 4,
                                  "f0", "f1", "f2", "f3")
        assert [t > 0 for t in ttls] == [True, True, True, False]
        assert report.field_ttl_hashes == 1
    else:
        assert report.field_ttl_hashes == 0


def test_same_seed_same_data(lab: Fleet) -> None:
    a, b, c = (lab.start("valkey-8.0") for _ in range(3))
    seed(a.endpoint, keys=3000, seed_value=42)
    seed(b.endpoint, keys=3000, seed_value=42)
    seed(c.endpoint, keys=3000, seed_value=43)

    def digest(server, db: int) -> bytes:
        client = server.client(db=db)
        # digests of values only (expiry times differ by when each ran)
        keys = sorted(client.scan_iter(count=1000))
        return b"".join(k + client.execute_command("DEBUG", "DIGEST-VALUE", k)[0] for k in keys)

    for db in (0, 1, 2):
        assert digest(a, db) == digest(b, db)
    assert digest(a, 0) != digest(c, 0)


def test_strings_and_big_profiles(lab: Fleet) -> None:
    server = lab.start("redis-8")
    report = seed(server.endpoint, keys=2000, profile="strings")
    assert set(report.by_type) == {"string"}
    assert server.client().dbsize() == 2000
    big = lab.start("redis-8")
    report = seed(big.endpoint, keys=12, profile="big")
    assert report.keys == 12
    sizes = [big.client().memory_usage(k) for k in big.client().scan_iter()]
    assert len(sizes) == 12 and min(sizes) > 10_000
