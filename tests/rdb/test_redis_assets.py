"""The Redis test suite's RDB files ($KVMIGRATE_TESTDATA/redis-test-assets) read as their
README documents; the corrupt one refused with the byte offset."""

from __future__ import annotations

import csv

import pytest

from migrate.rdb import Aux, Entry, RdbFormatError, RdbReader, read_file
from tests.conftest import TESTDATA, needs_testdata
from tests.rdb.snapshot import rdb_snapshot

ASSETS = TESTDATA / "redis-test-assets"
pytestmark = needs_testdata


def _expected_encodings() -> dict[bytes, tuple[str, object]]:
    out: dict[bytes, tuple[str, object]] = {}
    with open(ASSETS / "encodings.expected.csv", newline="") as fh:
        for row in csv.reader(fh):
            db, key, kind, *members = row
            assert db == "0"
            items = [m.encode() for m in members]
            value: object
            if kind == "string":
                value = items[0]
            elif kind == "list":
                value = items
            elif kind == "set":
                value = frozenset(items)
            elif kind == "zset":
                value = {items[i]: float(items[i + 1]) for i in range(0, len(items), 2)}
            else:
                value = {items[i]: items[i + 1] for i in range(0, len(items), 2)}
            out[key.encode()] = (kind, value)
    return out


def test_encodings_rdb_matches_expected_csv() -> None:
    expected = _expected_encodings()
    got = {k[1]: (v[0], v[1]) for k, v in rdb_snapshot(str(ASSETS / "encodings.rdb")).items()}
    assert len(expected) == 13
    assert got == expected
    encodings = {e.key: e.encoding for e in read_file(str(ASSETS / "encodings.rdb"))
                 if isinstance(e, Entry)}
    assert encodings[b"set_zipped_1"] == "intset"
    assert encodings[b"hash_zipped"] == "ziplist"
    assert encodings[b"zset"] == "skiplist-v1"


@pytest.mark.parametrize(("name", "version", "expected"), [
    ("hash-zipmap.rdb", 3, {b"hash": ("hash", {b"f1": b"v1", b"f2": b"v2"})}),
    ("hash-ziplist.rdb", 9, {b"hash": ("hash", {b"f1": b"v1", b"f2": b"v2"})}),
    ("zset-ziplist.rdb", 10, {b"zset": ("zset", {b"one": 1.0, b"two": 2.0})}),
])
def test_single_key_files(name: str, version: int, expected: dict) -> None:
    with open(ASSETS / name, "rb") as fh:
        assert RdbReader(fh).producer.rdb_version == version
    got = {k[1]: (v[0], v[1]) for k, v in rdb_snapshot(str(ASSETS / name)).items()}
    assert got == expected


def test_list_quicklist() -> None:
    got = rdb_snapshot(str(ASSETS / "list-quicklist.rdb"))
    assert got[(0, b"x")][:2] == ("string", b"7")
    assert got[(0, b"list")][0] == "list" and got[(0, b"list")][1][0] == b"7"
    assert len(got) == 2


def test_scriptbackup_has_no_keys_and_carries_the_script() -> None:
    records = list(read_file(str(ASSETS / "scriptbackup.rdb")))
    assert not [r for r in records if isinstance(r, Entry)]
    lua = [r for r in records if isinstance(r, Aux) and r.name == b"lua"]
    assert lua[0].value == b"return redis.call('set', 'foo', 'bar')"


def test_empty_keys_are_read_as_empty_and_loaded_as_nothing() -> None:
    entries = [r for r in read_file(str(ASSETS / "corrupt_empty_keys.rdb"))
               if isinstance(r, Entry)]
    assert len(entries) == 9
    assert all(e.empty for e in entries)
    assert {e.key for e in entries} == {
        b"set", b"list_quicklist", b"list_quicklist_empty_ziplist", b"list_ziplist", b"hash",
        b"hash_ziplist", b"zset", b"zset_ziplist", b"zset_listpack"}
    assert rdb_snapshot(str(ASSETS / "corrupt_empty_keys.rdb")) == {}


def test_corrupt_ziplist_is_refused_with_its_offset() -> None:
    with pytest.raises(RdbFormatError) as info:
        list(read_file(str(ASSETS / "corrupt_ziplist.rdb")))
    assert info.value.offset == 488
    assert "ziplist" in str(info.value) and "byte 488" in str(info.value)


def test_aof_with_rdb_preamble_reads_the_preamble() -> None:
    with open(ASSETS / "rdb-preamble.aof", "rb") as fh:
        reader = RdbReader(fh)
        records = list(reader.records())
        assert records[-1].verified  # type: ignore[union-attr]
        assert reader.unconsumed().startswith(b"*")  # the AOF commands after the preamble
