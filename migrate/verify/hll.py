"""HyperLogLog values compared by what they count: Redis stores one sparse or dense, with a
cached cardinality in its header, and Dragonfly re-encodes the ones it receives (seen on
v1.40.1), so two equal HyperLogLogs can differ byte for byte. Their 16,384 registers do not.
Decoded here, read-only (PFCOUNT may write its cache on the source, so it is not used).

Format (redis src/hyperloglog.c): "HYLL", an encoding byte (0 dense, 1 sparse), three unused
bytes, eight bytes of cached cardinality, then the registers: dense, 6 bits each, packed
least significant bit first; sparse, opcodes ZERO (00xxxxxx: 1-64 zero registers), XZERO
(01xxxxxx yyyyyyyy: 1-16,384 zero registers) and VAL (1vvvvvxx: 1-4 registers of value 1-32).
"""

from __future__ import annotations

REGISTERS = 16384
HEADER = 16


def registers(value: bytes) -> bytes | None:
    """The 16,384 register values of a HyperLogLog, or None if ``value`` is not one."""
    if len(value) < HEADER or not value.startswith(b"HYLL"):
        return None
    body = value[HEADER:]
    if value[4] == 0:  # dense
        if len(body) < (REGISTERS * 6 + 7) // 8:
            return None
        out = bytearray(REGISTERS)
        padded = body + b"\0"
        for reg in range(REGISTERS):
            bit = reg * 6
            byte, shift = bit >> 3, bit & 7
            out[reg] = ((padded[byte] >> shift) | (padded[byte + 1] << (8 - shift))) & 63
        return bytes(out)
    if value[4] == 1:  # sparse
        out = bytearray()
        i = 0
        while i < len(body):
            op = body[i]
            if op & 0xC0 == 0:  # ZERO
                out += bytes((op & 0x3F) + 1)
                i += 1
            elif op & 0xC0 == 0x40:  # XZERO
                if i + 1 >= len(body):
                    return None
                out += bytes((((op & 0x3F) << 8) | body[i + 1]) + 1)
                i += 2
            else:  # VAL
                out += bytes([((op >> 2) & 0x1F) + 1]) * ((op & 0x03) + 1)
                i += 1
        return bytes(out) if len(out) == REGISTERS else None
    return None


def same_hyperloglog(a: bytes, b: bytes) -> bool:
    """Whether two values are HyperLogLogs with the same registers."""
    ra = registers(a)
    return ra is not None and ra == registers(b)
