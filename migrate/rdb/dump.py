"""DUMP payloads: a value's serialized bytes (type byte onward), then the 2-byte
little-endian RDB version, then the CRC64 (Jones) of everything before it."""

from __future__ import annotations

from migrate.rdb.crc64 import crc64
from migrate.rdb.errors import RdbFormatError


def make_payload(raw: bytes, rdb_version: int) -> bytes:
    """A DUMP payload for a target that loads ``rdb_version``."""
    body = raw + rdb_version.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


def split_payload(payload: bytes) -> tuple[bytes, int]:
    """(raw value bytes, RDB version) of a DUMP payload whose CRC64 is checked."""
    if len(payload) < 11:
        raise RdbFormatError(0, "DUMP payload is too short")
    body, crc = payload[:-8], int.from_bytes(payload[-8:], "little")
    if crc64(body) != crc:
        raise RdbFormatError(len(body), "DUMP payload checksum is wrong")
    return body[:-2], int.from_bytes(body[-2:], "little")
