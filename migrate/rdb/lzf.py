"""LZF decompression (RDB compressed strings): python-lzf's C code, or a pure-Python fallback."""

from __future__ import annotations

try:
    import lzf as _lzf
except ImportError:  # pragma: no cover - python-lzf is a dependency
    _lzf = None


def decompress(data: bytes, expected_len: int) -> bytes | None:
    """The decompressed bytes, or None when ``data`` is not valid LZF of that length."""
    if _lzf is not None:
        try:
            out = _lzf.decompress(data, expected_len + 1)
        except ValueError:
            return None
        return out if out is not None and len(out) == expected_len else None
    return decompress_py(data, expected_len)


def decompress_py(data: bytes, expected_len: int) -> bytes | None:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:  # literal run of ctrl + 1 bytes
            run = ctrl + 1
            if i + run > n:
                return None
            out += data[i:i + run]
            i += run
            continue
        length = ctrl >> 5
        if length == 7:
            if i >= n:
                return None
            length += data[i]
            i += 1
        if i >= n:
            return None
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
        i += 1
        if ref < 0:
            return None
        for _ in range(length + 2):
            out.append(out[ref])
            ref += 1
    return bytes(out) if len(out) == expected_len else None
