"""Malformed input, crafted from a real file: one error with the byte offset, never a skip."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.rdb import End, Entry, RdbFormatError, RdbReader, crc64, encode
from tests.rdb.conftest import SavedRdb


def _read_all(data: bytes) -> list:
    return list(RdbReader(io.BytesIO(data)).records())


@pytest.fixture
def small_rdb(lab: Fleet) -> bytes:
    server = lab.start("redis-8")
    c = server.client(0)
    c.set("a", "hello")
    c.rpush("l", *[f"e{i}" for i in range(50)])
    c.hset("h", mapping={f"f{i}": i for i in range(5)})
    c.save()
    return (Path(server.directory) / "dump.rdb").read_bytes()


def test_every_truncation_is_refused(small_rdb: bytes) -> None:
    assert _read_all(small_rdb)[-1].verified
    for cut in range(0, len(small_rdb), 7):
        with pytest.raises(RdbFormatError) as info:
            _read_all(small_rdb[:cut])
        assert 0 <= info.value.offset <= cut


def test_truncated_message_names_the_offset(small_rdb: bytes) -> None:
    with pytest.raises(RdbFormatError, match=r"byte \d+: truncated"):
        _read_all(small_rdb[:-3])


def test_bad_checksum(small_rdb: bytes) -> None:
    bad = small_rdb[:-1] + bytes([small_rdb[-1] ^ 0xFF])
    with pytest.raises(RdbFormatError, match="bad checksum") as info:
        _read_all(bad)
    assert info.value.offset == len(small_rdb) - 8


def test_a_flipped_byte_in_a_value_is_caught(small_rdb: bytes) -> None:
    entry = next(r for r in _read_all(small_rdb) if isinstance(r, Entry) and r.key == b"a")
    pos = small_rdb.index(b"hello", entry.offset)
    bad = small_rdb[:pos] + b"J" + small_rdb[pos + 1:]
    with pytest.raises(RdbFormatError, match="bad checksum"):
        _read_all(bad)


def test_wrong_magic(small_rdb: bytes) -> None:
    with pytest.raises(RdbFormatError, match="byte 0: not an RDB file: wrong magic"):
        _read_all(b"RIDES" + small_rdb[5:])
    with pytest.raises(RdbFormatError, match="version 99"):
        _read_all(b"REDIS0099" + small_rdb[9:])
    with pytest.raises(RdbFormatError, match="byte 0"):
        _read_all(b"")


def test_unknown_type_byte(small_rdb: bytes) -> None:
    entry = next(r for r in _read_all(small_rdb) if isinstance(r, Entry) and r.key == b"h")
    bad = small_rdb[:entry.offset] + bytes([30]) + small_rdb[entry.offset + 1:]
    with pytest.raises(RdbFormatError, match=f"byte {entry.offset}: unknown type or opcode 30"):
        _read_all(bad)
    bad = small_rdb[:entry.offset] + bytes([200]) + small_rdb[entry.offset + 1:]
    with pytest.raises(RdbFormatError, match=f"byte {entry.offset}: unknown opcode 200"):
        _read_all(bad)


def test_valkey_magic_decides_type_22(saved_rdbs: dict[str, SavedRdb]) -> None:
    """The same type byte 22 is Valkey's field-TTL hash under VALKEY080; under an RDB 11
    REDIS header it is refused (no such type before RDB 12)."""
    data = saved_rdbs["valkey-9"].path.read_bytes()
    entry = next(r for r in _read_all(data) if isinstance(r, Entry) and r.type_code == 22)
    assert entry.field_expires
    relabelled = b"REDIS0011" + data[9:]
    with pytest.raises(RdbFormatError, match=f"byte {entry.offset}: type 22"):
        _read_all(relabelled)


def test_reads_from_a_pipe_with_a_limit_and_hands_back_what_follows(small_rdb: bytes) -> None:
    """Replica mode: the RDB arrives on a pipe/socket followed by other bytes."""
    r, w = os.pipe()
    trailer = b"*1\r\n$4\r\nPING\r\n"

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            for i in range(0, len(small_rdb), 100):
                out.write(small_rdb[i:i + 100])
                out.flush()
            out.write(trailer)

    thread = threading.Thread(target=feed)
    thread.start()
    with os.fdopen(r, "rb") as fh:
        reader = RdbReader(fh)
        records = list(reader.records())
        rest = reader.unconsumed() + fh.read()
    thread.join()
    assert isinstance(records[-1], End) and records[-1].verified
    assert rest == trailer
    limited = RdbReader(io.BytesIO(small_rdb + trailer), limit=len(small_rdb))
    assert isinstance(list(limited.records())[-1], End)
    assert limited.unconsumed() == b""


def test_pre_ga_listpack_ex_type_23_crafted_from_a_real_type_25(
        saved_rdbs: dict[str, SavedRdb]) -> None:
    """Redis 7.4 release candidates wrote type 23: type 25 without its 8-byte next-expiry
    hint (redis rdb.c). Crafted from Redis 8's real type 25 record, CRC recomputed."""
    data = saved_rdbs["redis-8"].path.read_bytes()
    e25 = next(r for r in _read_all(data) if isinstance(r, Entry) and r.type_code == 25)
    klen = len(encode.string(e25.key))
    body = (data[:e25.offset] + bytes([23]) + data[e25.offset + 1:e25.offset + 1 + klen] +
            data[e25.offset + 1 + klen + 8:-8])
    crafted = body + crc64(body).to_bytes(8, "little")
    e23 = next(r for r in _read_all(crafted) if isinstance(r, Entry) and r.key == e25.key)
    assert (e23.type_code, e23.encoding) == (23, "listpack-ex-pre-ga")
    assert e23.value == e25.value and e23.field_expires == e25.field_expires
    # the same record under an RDB 11 header is refused: no such type before RDB 12
    with pytest.raises(RdbFormatError, match="type 23"):
        _read_all(b"REDIS0011" + crafted[9:])
