"""The byte source under the reader: a file, a pipe or a socket, read forward only.

It keeps a small buffer (never the whole input), tracks the byte offset for error messages,
computes the CRC64 of everything consumed, and can capture the bytes of one value (for the
DUMP payload of the RESTORE fast path) up to a bound. It never reads past ``limit`` bytes,
and :meth:`unconsumed` hands back any bytes buffered beyond the RDB's end (replica mode:
the command stream that follows the snapshot on the same socket).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from migrate.rdb.crc64 import crc64
from migrate.rdb.errors import NotWalked, RdbFormatError

READ_SIZE = 256 * 1024


class Readable(Protocol):
    """What is read from: a binary file or anything with its ``read`` (``read1`` is used
    where present), such as the growing spool file of replica mode."""

    def read(self, n: int = -1, /) -> bytes: ...


class RdbInput:
    def __init__(self, raw: Readable, *, limit: int | None = None, checksum: bool = True,
                 offset: int = 0):
        """``offset``: where in the RDB ``raw`` starts (for the offsets in messages)."""
        self._read = getattr(raw, "read1", None) or raw.read
        self._limit = limit
        self._fed = 0
        self._buf = b""
        self._pos = 0
        self._base = offset
        self._checksum = checksum
        self._crc = 0
        self._crc_pos = 0
        self._cap: list[bytes] | None = None
        self._cap_pos = 0
        self._cap_len = 0
        self._cap_max = 0

    @property
    def offset(self) -> int:
        """Bytes consumed so far (the offset of the next byte)."""
        return self._base + self._pos

    def error(self, reason: str, at: int | None = None) -> RdbFormatError:
        return RdbFormatError(self.offset if at is None else at, reason)

    def _fill(self, n: int) -> None:
        consumed = self._pos
        if self._checksum and self._crc_pos < consumed:
            self._crc = crc64(self._buf[self._crc_pos:consumed], self._crc)
        if self._cap is not None:
            self._cap_keep(self._buf[self._cap_pos:consumed])
        keep = self._buf[consumed:]
        self._base += consumed
        self._pos = self._crc_pos = self._cap_pos = 0
        parts = [keep]
        have = len(keep)
        while have < n:
            want = max(n - have, READ_SIZE)
            if self._limit is not None:
                want = min(want, self._limit - self._fed)
                if want <= 0:
                    break
            data = self._read(want)
            if not data:
                break
            parts.append(data)
            have += len(data)
            self._fed += len(data)
        self._buf = b"".join(parts)
        if have < n:
            raise RdbFormatError(self.offset + have,
                                 f"truncated: needed {n} more byte(s), the input ended")

    def read(self, n: int) -> bytes:
        p = self._pos
        end = p + n
        if end > len(self._buf):
            self._fill(n)
            p, end = 0, n
        self._pos = end
        return self._buf[p:end]

    def read_byte(self) -> int:
        p = self._pos
        if p >= len(self._buf):
            self._fill(1)
            p = 0
        self._pos = p + 1
        return self._buf[p]

    def try_plain_string(self) -> bytes | None:
        """A plain RDB string of under 16 KiB read straight from the buffer (the common case:
        keys, small values), or None (nothing consumed) for any other case."""
        buf = self._buf
        p = self._pos
        if p + 2 > len(buf):
            return None
        b = buf[p]
        if b < 0x40:
            end = p + 1 + b
            start = p + 1
        elif b < 0x80:
            start = p + 2
            end = start + (((b & 0x3F) << 8) | buf[p + 1])
        else:
            return None
        if end > len(buf):
            return None
        self._pos = end
        return buf[start:end]

    def just_read(self, n: int) -> bytes:
        """The last ``n`` bytes consumed, when they came from the current buffer (right after
        :meth:`try_plain_string` returned a value, which never refills it)."""
        assert n <= self._pos
        return self._buf[self._pos - n:self._pos]

    def skip_string(self) -> None:
        """Step over one RDB string (any encoding) without building it; the fast path works
        on the buffer, the slow one (lengths split across reads) byte by byte."""
        end = self._plain_end()
        if end is None:
            self._skip_string_slow()
        else:
            self._pos = end

    def take_string(self, limit: int = 1 << 62) -> bytes | None:
        """The serialized bytes of one RDB string (any encoding), stepped over undecoded:
        a slice of the buffer when it is whole there, else captured on the slow path; None
        (the string stepped over all the same) when it is longer than ``limit``."""
        start = self._pos
        end = self._plain_end()
        if end is not None:
            self._pos = end
            return self._buf[start:end] if end - start <= limit else None
        self.start_capture(limit)
        self._skip_string_slow()
        return self.end_capture()

    def _plain_end(self) -> int | None:
        """Where the plain (length-prefixed) string at the read position ends, when it is
        whole in the buffer; None for an encoded one or one that is not."""
        buf = self._buf
        p = self._pos
        if p + 9 > len(buf):
            return None
        b = buf[p]
        kind = b >> 6
        if kind == 0:
            p += 1 + (b & 0x3F)
        elif kind == 1:
            p += 2 + (((b & 0x3F) << 8) | buf[p + 1])
        elif b == 0x80:
            p += 5 + int.from_bytes(buf[p + 1:p + 5], "big")
        elif b == 0x81:
            p += 9 + int.from_bytes(buf[p + 1:p + 9], "big")
        else:
            return None
        return p if p <= len(buf) else None

    def _skip_string_slow(self) -> None:
        b = self.read_byte()
        kind = b >> 6
        if kind == 0:
            self.skip(b & 0x3F)
        elif kind == 1:
            self.skip(((b & 0x3F) << 8) | self.read_byte())
        elif b == 0x80:
            self.skip(int.from_bytes(self.read(4), "big"))
        elif b == 0x81:
            self.skip(int.from_bytes(self.read(8), "big"))
        else:
            enc = b & 0x3F
            if enc == 3:  # LZF: compressed length, then uncompressed length
                clen = self._length()
                self._length()
                self.skip(clen)
            elif enc < 3:
                self.read((1, 2, 4)[enc])
            else:
                raise self.error(f"invalid string encoding 0x{b:02x}", self.offset - 1)

    def span(self, step: Callable[[bytes, int], int], limit: int) -> tuple[bytes, int, int] | None:
        """``(buffer, start, end)``: the item at the read position, which ``step(buffer,
        start)`` steps over and checks (returning where it ends), now consumed; or None, with
        nothing consumed, when it is longer than ``limit`` bytes or ``step`` refuses it
        (:class:`NotWalked`, :class:`RdbFormatError`) with all of it at hand. The buffer
        grows as needed (an item cut by its end raises in ``step``, or ends past it), never
        beyond about ``limit`` bytes."""
        exhausted = False
        while True:
            buf, start = self._buf, self._pos
            have = len(buf) - start
            try:
                end = step(buf, start)
                if end <= len(buf):
                    if end - start > limit:
                        return None
                    self._pos = end
                    return buf, start, end
            except (IndexError, struct.error):
                pass
            except (NotWalked, RdbFormatError):
                pass  # its own, or one of an item cut by the buffer's end: more is read
            if exhausted or have > limit:
                return None
            try:
                self._fill(min(max(2 * have, 1 << 16), limit + 1))
            except RdbFormatError:  # the input ended: what is buffered is all there is
                exhausted = True

    def skip(self, n: int) -> None:
        """Step over ``n`` bytes, a buffer's worth at a time (a string of hundreds of
        megabytes is never held whole)."""
        while True:
            avail = len(self._buf) - self._pos
            if n <= avail:
                self._pos += n
                return
            self._pos += avail
            n -= avail
            self._fill(1)

    def _length(self) -> int:
        b = self.read_byte()
        kind = b >> 6
        if kind == 0:
            return b & 0x3F
        if kind == 1:
            return ((b & 0x3F) << 8) | self.read_byte()
        if b == 0x80:
            return int.from_bytes(self.read(4), "big")
        if b == 0x81:
            return int.from_bytes(self.read(8), "big")
        raise self.error(f"invalid length encoding 0x{b:02x}", self.offset - 1)

    def unread(self, n: int) -> None:
        """Step back over the ``n`` bytes just read by :meth:`try_plain_string`."""
        assert n <= self._pos
        self._pos -= n

    def unread_byte(self) -> None:
        """Step back over the byte just read by :meth:`read_byte` (always still buffered)."""
        self._pos -= 1

    def at_end(self) -> bool:
        """True when no byte is left (reads ahead to find out)."""
        if self._pos < len(self._buf):
            return False
        try:
            self._fill(1)
        except RdbFormatError:
            return True
        return False

    # --- checksum ----------------------------------------------------------------------
    def crc(self) -> int:
        """CRC64 of every byte consumed so far."""
        if self._crc_pos < self._pos:
            self._crc = crc64(self._buf[self._crc_pos:self._pos], self._crc)
            self._crc_pos = self._pos
        return self._crc

    # --- capture of one value's bytes --------------------------------------------------
    def start_capture(self, max_bytes: int) -> None:
        self._cap = []
        self._cap_pos = self._pos
        self._cap_len = 0
        self._cap_max = max_bytes

    def _cap_keep(self, data: bytes) -> None:
        assert self._cap is not None
        self._cap_len += len(data)
        if self._cap_len > self._cap_max:
            self._cap = None  # too big for the fast path: stop keeping bytes
        else:
            self._cap.append(data)

    def end_capture(self) -> bytes | None:
        """The bytes since :meth:`start_capture`, or None when they exceeded the bound."""
        cap = self._cap
        if cap is None:
            return None
        self._cap = None
        tail = self._buf[self._cap_pos:self._pos]
        if self._cap_len + len(tail) > self._cap_max:
            return None
        cap.append(tail)
        return b"".join(cap)

    def drop_capture(self) -> None:
        self._cap = None

    def unconsumed(self) -> bytes:
        """Bytes already read from the raw input but not consumed (after the RDB's end)."""
        return self._buf[self._pos:]
