"""The reader against RDB files written by real servers, compared key by key with the live
server that wrote them (values, TTLs, field TTLs, streams with groups and pending entries)."""

from __future__ import annotations

import os

import pytest

from migrate.lab.fleet import Fleet
from migrate.rdb import Aux, End, Entry, RdbReader, make_payload, read_file
from tests.rdb.conftest import WRITERS, SavedRdb
from tests.rdb.snapshot import differences, rdb_snapshot, server_snapshot

EXPECTED_HEADER = {"redis-7.0": ("REDIS", 10, "redis"), "redis-8": ("REDIS", 12, "redis"),
                   "valkey-8.0": ("REDIS", 11, "valkey"), "valkey-9": ("VALKEY", 80, "valkey")}


@pytest.mark.parametrize("spec", WRITERS)
def test_file_matches_live_server(saved_rdbs: dict[str, SavedRdb], spec: str) -> None:
    saved = saved_rdbs[spec]
    live = server_snapshot(saved.server.endpoint)
    read = rdb_snapshot(str(saved.path), active_time=spec != "redis-7.0")
    assert len(live) == 1500
    assert differences(live, read) == []
    kinds = {v[0] for v in read.values()}
    assert kinds == {"string", "list", "set", "zset", "hash", "stream"}
    assert any(v[2] for v in read.values()), "some keys carry a TTL"
    if spec in ("redis-8", "valkey-9"):
        assert read[(0, b"seed:hash:field-ttl")][3], "field TTLs read"


@pytest.mark.parametrize("spec", WRITERS)
def test_small_chunks_give_the_same_content(saved_rdbs: dict[str, SavedRdb], spec: str) -> None:
    saved = saved_rdbs[spec]
    whole = rdb_snapshot(str(saved.path))
    chunked = rdb_snapshot(str(saved.path), chunk_elements=7, chunk_bytes=50)
    assert differences(whole, chunked) == []
    parts = [e for e in read_file(str(saved.path), chunk_elements=7, chunk_bytes=50)
             if isinstance(e, Entry) and not e.whole]
    assert parts, "big keys came in several parts"
    assert all(p.raw is None for p in parts)


def test_big_uncompressed_string_comes_in_pieces(lab: Fleet) -> None:
    server = lab.start("redis-8", extra_args=["--rdbcompression", "no"])
    value = os.urandom(100_000)
    client = server.client(0)
    client.set("big", value)
    client.pexpireat("big", 4_000_000_000_000)
    client.save()
    parts = [e for e in read_file(os.path.join(server.directory, "dump.rdb"), chunk_bytes=4096)
             if isinstance(e, Entry)]
    assert len(parts) == 25
    assert [p.part for p in parts] == list(range(25)) and parts[-1].final
    assert b"".join(p.value for p in parts) == value
    assert {p.expire_ms for p in parts} == {4_000_000_000_000}


@pytest.mark.parametrize("spec", WRITERS)
def test_header_producer_and_checksum(saved_rdbs: dict[str, SavedRdb], spec: str) -> None:
    with open(saved_rdbs[spec].path, "rb") as fh:
        reader = RdbReader(fh)
        records = list(reader.records())
    magic, version, flavor = EXPECTED_HEADER[spec]
    assert (reader.producer.magic, reader.producer.rdb_version, reader.producer.flavor) == \
        (magic, version, flavor)
    assert any(isinstance(r, Aux) and r.name in (b"redis-ver", b"valkey-ver") for r in records)
    end = records[-1]
    assert isinstance(end, End) and end.verified


@pytest.mark.parametrize("spec", WRITERS)
def test_raw_bytes_are_the_servers_dump_payload(saved_rdbs: dict[str, SavedRdb],
                                                 spec: str) -> None:
    """Entry.raw plus the footer for the server's own version is byte for byte its DUMP."""
    saved = saved_rdbs[spec]
    version = EXPECTED_HEADER[spec][1]
    checked = 0
    clients = {}
    for e in read_file(str(saved.path)):
        if isinstance(e, Entry) and e.raw is not None and checked < 300:
            client = clients.setdefault(e.db, saved.server.client(e.db))
            assert make_payload(e.raw, version) == client.dump(e.key), e.key
            checked += 1
    assert checked == 300


@pytest.mark.parametrize("spec", WRITERS)
def test_skimming_gives_the_same_bytes(saved_rdbs: dict[str, SavedRdb], spec: str) -> None:
    """The second-pass mode (values stepped over, not decoded) yields the same raw bytes."""
    path = str(saved_rdbs[spec].path)
    full = {(e.db, e.key): e.raw for e in read_file(path, raw_limit=1 << 30)
            if isinstance(e, Entry) and e.whole}
    skimmed = {(e.db, e.key): e for e in read_file(path, skim=lambda t, o: True)
               if isinstance(e, Entry)}
    assert len(full) > 1490 and len(skimmed) == 1500  # the 20,000-element keys come chunked
    decoded = [k for k, e in skimmed.items() if not e.skimmed]
    assert {skimmed[k].type_code for k in decoded} <= {22, 24, 25}  # field-TTL hashes
    assert all(skimmed[k].raw == raw for k, raw in full.items() if k not in decoded)
    assert all(e.value is None and e.raw for e in skimmed.values() if e.skimmed)
