"""Write entries to an RDB file that a chosen target version loads at startup.

Values whose encoding the target reads are copied byte for byte (``Entry.raw``); the rest
are re-encoded in the oldest forms every version loads (list 1, set 2, hash 4, zset 5 or 3,
streams as listpacks v1/v2/v3 per version), hashes with field TTLs as Valkey 9's type 22 or
Redis 7.4's type 24. Chunked big keys are spooled to a temporary file (lengths come first
in the format), so memory stays bounded. The file is written to ``OUT.part`` and renamed
when complete: nothing half-written is left under the final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from migrate.apply.commands import ApplyOptions, ApplyStats
from migrate.apply.target import Target
from migrate.dbmap import DbMap
from migrate.rdb import encode
from migrate.rdb.crc64 import crc64
from migrate.rdb.records import Entry, Function, StreamValue

OP_FUNCTION2, OP_IDLE, OP_FREQ, OP_AUX = 245, 248, 249, 250
OP_EXPIRETIME_MS, OP_SELECTDB, OP_EOF = 252, 254, 255


class _Out:
    """A file with a running CRC64."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.crc = 0

    def write(self, data: bytes) -> None:
        self.crc = crc64(data, self.crc)
        self.fh.write(data)


class RdbFileWriter:
    def __init__(self, path: Path, target: Target, producer_magic: str,
                 options: ApplyOptions | None = None, db_map: dict[int, int] | None = None):
        self.path = path
        self.target = target
        self.magic = producer_magic
        self.opt = options or ApplyOptions()
        self.db_map = DbMap(db_map or {})
        self.stats = ApplyStats()
        self.version = target.dump_version
        self._part = path.with_name(path.name + ".part")
        self._fh = self._part.open("wb")
        self.out = _Out(self._fh)
        self._db: int | None = None
        self._skip: tuple[int, bytes] | None = None
        self._spool: BinaryIO | None = None
        self._spool_count = 0
        self._stream_first: tuple[int, int] | None = None
        self._functions: list[bytes] = []
        header = (b"VALKEY%03d" % self.version if self.version >= 80
                  else b"REDIS%04d" % self.version)
        self.out.write(header)
        self._aux(b"redis-bits", b"64")
        self._aux(b"ctime", b"%d" % int(time.time()))
        self._aux(b"aof-base", b"0")

    def _aux(self, name: bytes, value: bytes) -> None:
        self.out.write(bytes((OP_AUX,)) + encode.string(name) + encode.string(value))

    # --- records -----------------------------------------------------------------------
    def load_function(self, function: Function) -> None:
        if self.target.loads_functions and self.version >= 10:
            self.out.write(bytes((OP_FUNCTION2,)) + encode.string(function.code))
            self.stats.functions += 1

    def write(self, e: Entry) -> None:
        ident = (e.db, e.key)
        if e.part > 0 and self._skip == ident:
            if e.final:
                self._skip = None
            return
        self._skip = None
        if e.empty:
            self.stats.empty_skipped += 1
            return
        now = self.opt.now_ms()
        if e.expire_ms is not None and e.expire_ms <= now:
            self.stats.expired_skipped += 1
            self._skip = None if e.final else ident
            return
        reason = self._unsupported(e)
        if reason:
            self.stats.failed[reason] += 1
            self._skip = None if e.final else ident
            return
        if e.whole and e.raw is not None and self.target.restores(e.type_code, self.magic) \
                and not (e.field_expires and any(t <= now for t in e.field_expires.values())):
            self._key_header(e)
            self.out.write(e.raw[:1] + encode.string(e.key) + e.raw[1:])
            self.stats.restored += 1
            self.stats.keys[e.kind] += 1
            return
        self._encode(e, now)
        if e.final:
            self.stats.transcoded += 1
            self.stats.keys[e.kind] += 1

    def _unsupported(self, e: Entry) -> str | None:
        if e.kind == "module":
            if e.whole and e.raw is not None and self.target.restores(e.type_code, self.magic):
                return None
            return f"module value ({e.value.name}) cannot be re-encoded"
        if e.field_expires and self.target.field_ttl_mode != "hpexpireat":
            return f"hash field TTLs: {self.target} has no field expiry in its RDB"
        return None

    def _key_header(self, e: Entry) -> None:
        db = self.db_map.to(e.db)
        if db != self._db:
            self.out.write(bytes((OP_SELECTDB,)) + encode.length(db))
            self._db = db
        if e.expire_ms is not None:
            self.out.write(bytes((OP_EXPIRETIME_MS,)) + encode.ms_time(e.expire_ms))
        if self.target.flavor != "dragonfly":
            if e.idle_s is not None:
                self.out.write(bytes((OP_IDLE,)) + encode.length(e.idle_s))
            elif e.freq is not None:
                self.out.write(bytes((OP_FREQ, e.freq)))

    # --- re-encoding -------------------------------------------------------------------
    def _items(self, e: Entry, now: int) -> tuple[int, list[bytes]]:
        """(type byte, serialized elements) of one part."""
        v = e.value
        if e.kind == "string":
            return 0, [v]
        if e.kind == "list":
            return 1, [encode.string(x) for x in v]
        if e.kind == "set":
            return 2, [encode.string(x) for x in v]
        if e.kind == "zset":
            if self.version >= 8:
                return 5, [encode.string(m) + encode.binary_double(s) for m, s in v]
            return 3, [encode.string(m) + _old_double(s) for m, s in v]
        if e.kind == "hash":
            fe = e.field_expires or {}
            expired = {f for f, t in fe.items() if t <= now}
            self.stats.expired_fields_skipped += len(expired)
            pairs = [(f, x) for f, x in v if f not in expired]
            if not fe:
                return 4, [encode.string(f) + encode.string(x) for f, x in pairs]
            if self.target.flavor == "valkey":  # Valkey 9 type 22: field, value, int64 ms|-1
                return 22, [encode.string(f) + encode.string(x) + encode.ms_time(fe.get(f, -1))
                            for f, x in pairs]
            # Redis type 24 with minExpire 1: each TTL stored as (expire_at - 1 + 1)
            return 24, [encode.length(fe.get(f, 0)) + encode.string(f) +
                        encode.string(x) for f, x in pairs]
        raise AssertionError(e.kind)

    def _encode(self, e: Entry, now: int) -> None:
        if e.kind == "stream":
            self._stream(e)
            return
        type_code, items = self._items(e, now)
        if e.whole:
            self._key_header(e)
            self._value(type_code, e.key, len(items), b"".join(items), e.kind)
            return
        if e.part == 0:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed at the final part
            self._spool_count = 0
        assert self._spool is not None
        for item in items:
            self._spool.write(item)
        self._spool_count += len(items)
        if e.final:
            self._key_header(e)
            self._spool.seek(0)
            size = os.fstat(self._spool.fileno()).st_size
            head = bytes((type_code,)) + encode.string(e.key)
            if e.kind == "string":
                head += encode.length(size)
            else:
                head += (encode.ms_time(1) if type_code == 24 else b"") + \
                    encode.length(self._spool_count)
            self.out.write(head)
            while chunk := self._spool.read(1 << 20):
                self.out.write(chunk)
            self._spool.close()
            self._spool = None

    def _value(self, type_code: int, key: bytes, count: int, body: bytes, kind: str) -> None:
        head = bytes((type_code,)) + encode.string(key)
        if kind == "string":
            head += encode.length(len(body))
        else:
            head += (encode.ms_time(1) if type_code == 24 else b"") + encode.length(count)
        self.out.write(head + body)

    def _stream(self, e: Entry) -> None:
        v: StreamValue = e.value
        type_code = 21 if self.version >= 11 else (19 if self.version >= 10 else 15)
        if e.part == 0:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed at the final part
            self._spool_count = 0
            self._stream_first = v.entries[0][0] if v.entries else None
        assert self._spool is not None
        nodes = encode.stream_nodes(v.entries)
        for node in nodes:
            self._spool.write(node)
        self._spool_count += len(nodes)
        if not e.final:
            return
        self._key_header(e)
        self.out.write(bytes((type_code,)) + encode.string(e.key) +
                       encode.length(self._spool_count))
        self._spool.seek(0)
        while chunk := self._spool.read(1 << 20):
            self.out.write(chunk)
        self._spool.close()
        self._spool = None
        self.out.write(encode.stream_tail(v, type_code, self._stream_first))

    # --- end ---------------------------------------------------------------------------
    def finish(self) -> ApplyStats:
        self.out.write(bytes((OP_EOF,)))
        self._fh.write(self.out.crc.to_bytes(8, "little"))
        self._fh.close()
        shutil.move(self._part, self.path)
        return self.stats

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._part.unlink(missing_ok=True)


def _old_double(v: float) -> bytes:
    if v != v:
        return b"\xfd"
    if v == float("inf"):
        return b"\xfe"
    if v == float("-inf"):
        return b"\xff"
    text = repr(v).encode()
    return bytes((len(text),)) + text
