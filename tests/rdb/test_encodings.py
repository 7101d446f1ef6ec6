"""Pure-logic checks of the low-level encodings (no server needed)."""

from __future__ import annotations

import os

import pytest

from migrate.rdb import RdbFormatError, crc64, make_payload, split_payload
from migrate.rdb.crc64 import crc64_py
from migrate.rdb.encodings import parse_intset, parse_listpack
from migrate.rdb.lzf import decompress, decompress_py
from migrate.rdb.types.module import CHARSET, decode_module_id


def test_crc64_jones_check_value_and_fallback() -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    data = os.urandom(5000)
    assert crc64_py(data) == crc64(data)
    assert crc64(data[2000:], crc64(data[:2000])) == crc64(data)


def test_lzf_fallback_matches_c() -> None:
    import lzf

    text = b"kvmigrate compressible text block " * 300 + os.urandom(100)
    packed = lzf.compress(text)
    assert decompress_py(packed, len(text)) == text == decompress(packed, len(text))
    assert decompress(packed, len(text) + 1) is None


def test_module_id_roundtrip() -> None:
    name = "ReJSON-RL"
    module_id = 0
    for ch in name:
        module_id = (module_id << 6) | CHARSET.index(ch)
    module_id = (module_id << 10) | 3
    assert decode_module_id(module_id) == ("ReJSON-RL", 3)


def test_payload_footer() -> None:
    raw = b"\x00\x05hello"
    payload = make_payload(raw, 11)
    assert payload[-10:-8] == b"\x0b\x00"
    assert split_payload(payload) == (raw, 11)
    with pytest.raises(RdbFormatError, match="checksum"):
        split_payload(payload[:-1] + b"\x00")


def test_listpack_and_intset_validation() -> None:
    # listpack: header (total 4, count 2), entries 7-bit uint 5 and 6-bit string "ab", end
    body = bytes([0x05, 0x01]) + bytes([0x82]) + b"ab" + bytes([0x03])
    lp = (6 + len(body) + 1).to_bytes(4, "little") + (2).to_bytes(2, "little") + body + b"\xff"
    assert parse_listpack(lp, 0) == [5, b"ab"]
    with pytest.raises(RdbFormatError, match="back-length"):
        parse_listpack(lp[:7] + b"\x09" + lp[8:], 0)
    with pytest.raises(RdbFormatError, match="entries"):
        parse_listpack(lp[:4] + (3).to_bytes(2, "little") + lp[6:], 0)
    iset = (2).to_bytes(4, "little") + (2).to_bytes(4, "little") + b"\x01\x00\x02\x00"
    assert parse_intset(iset, 0) == [1, 2]
    with pytest.raises(RdbFormatError, match="sorted"):
        parse_intset(iset[:8] + b"\x02\x00\x01\x00", 0)
