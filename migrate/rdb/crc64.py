"""CRC-64/Jones as Redis and Valkey use it (reflected, poly 0xad93d23594c935a9, init 0, no
final xor): the RDB trailer and the DUMP payload footer. ``crc64(b"123456789")`` is
0xe9c6d914c4b8d9ca. Uses crcmod's C extension; a table-driven fallback keeps it working
(slowly) where the extension cannot be built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

POLY_REFLECTED = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 bit-reversed

try:
    import crcmod

    _fast: Callable[[bytes, int], int] | None = crcmod.mkCrcFun(
        0x1AD93D23594C935A9, initCrc=0, rev=True, xorOut=0)
except ImportError:  # pragma: no cover - crcmod-plus is a dependency
    _fast = None


def _table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc64_py(data: bytes, crc: int = 0) -> int:
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


class Crc64(Protocol):
    def __call__(self, data: bytes, crc: int = 0, /) -> int: ...


crc64: Crc64 = _fast or crc64_py  # type: ignore[assignment]
"""``crc64(data, crc)``: the CRC of ``data`` continuing from ``crc`` (0 to start): crcmod's
C function itself where it is built (a Python wrapper around it cost a tenth of the
RESTORE hot path)."""
