"""The hash slot of a key: CRC16-XMODEM of the key (or of its ``{hash tag}``) mod 16384.

The hash tag rule, as the servers apply it: if the key has a ``{`` and a ``}`` after it with
at least one byte between them, only the bytes between the first ``{`` and the first ``}``
after it are hashed; otherwise (no ``{``, no ``}`` after it, or an empty tag ``{}``) the whole
key is. Uses crcmod's C extension; a table-driven fallback keeps it working where the
extension cannot be built.
"""

from __future__ import annotations

from collections.abc import Callable

SLOTS = 16384
POLY = 0x1021  # CRC-16/XMODEM: init 0, not reflected, no final xor

try:
    import crcmod

    _fast: Callable[[bytes], int] | None = crcmod.mkCrcFun(
        0x10000 | POLY, initCrc=0, rev=False, xorOut=0)
except ImportError:  # pragma: no cover - crcmod-plus is a dependency
    _fast = None


def _table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ POLY if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


_TABLE = _table()


def crc16_py(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM of ``data``; ``crc16(b"123456789")`` is 0x31c3."""
    if _fast is not None:
        return _fast(data)
    return crc16_py(data)


def hash_tag(key: bytes) -> bytes:
    """The part of ``key`` that is hashed: its non-empty ``{tag}``, or the whole key."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


def key_slot(key: bytes | str) -> int:
    """The hash slot (0-16383) of ``key``, as ``CLUSTER KEYSLOT`` answers."""
    if isinstance(key, str):
        key = key.encode()
    return crc16(hash_tag(key)) % SLOTS
