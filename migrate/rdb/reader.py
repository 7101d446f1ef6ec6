"""The streaming RDB reader: header, opcodes and keys in file order (see the package doc)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, cast

from migrate.rdb.encodings import read_length, read_ms_time, read_string
from migrate.rdb.errors import RdbFormatError
from migrate.rdb.records import (
    FIELD_TTL_HASH_TYPES_REDIS,
    TYPE_NAMES,
    VALKEY_TYPE_NAMES,
    Aux,
    End,
    Entry,
    Function,
    ModuleAux,
    Producer,
    Record,
    ResizeDb,
    SelectDb,
    SlotImport,
    SlotInfo,
)
from migrate.rdb.source import RdbInput, Readable
from migrate.rdb.steps import key_value_end, string_at
from migrate.rdb.types import hash as hash_type
from migrate.rdb.types import list as list_type
from migrate.rdb.types import module as module_type
from migrate.rdb.types import set as set_type
from migrate.rdb.types import stream as stream_type
from migrate.rdb.types import string as string_type
from migrate.rdb.types import zset as zset_type
from migrate.rdb.types.base import Chunks, ValueContext
from migrate.rdb.types.skim import SINGLE_STRING, SKIMMABLE
from migrate.rdb.types.skim import skim as skim_value

OP_KEY_META = 243  # Redis 8.6+ (RDB 13): refused; under VALKEY08x: a slot import
OP_SLOT_INFO = 244
OP_FUNCTION2 = 245
OP_FUNCTION_PRE_GA = 246
OP_MODULE_AUX = 247
OP_IDLE = 248
OP_FREQ = 249
OP_AUX = 250
OP_RESIZEDB = 251
OP_EXPIRETIME_MS = 252
OP_EXPIRETIME = 253
OP_SELECTDB = 254
OP_EOF = 255

REDIS_VERSIONS = range(1, 13)  # REDIS0001 .. REDIS0012: every type documented and read
VALKEY_VERSIONS = (80, 81)

_TYPE_BYTES = [bytes((code,)) for code in range(256)]  # a type byte, as a DUMP payload starts
_STEPS = [functools.partial(key_value_end, tc=code) for code in range(256)]

_READERS: dict[str, Callable[[ValueContext, int], Chunks]] = {
    "string": string_type.read, "list": list_type.read, "set": set_type.read,
    "zset": zset_type.read, "hash": hash_type.read, "stream": stream_type.read,
    "module": module_type.read,
}


class RdbReader:
    """Read an RDB from a binary stream (file, pipe, socket file), forward only.

    ``raw_limit``: keep a value's serialized bytes (``Entry.raw``) up to this size.
    ``chunk_elements`` / ``chunk_bytes``: bounds of one chunk of a big key.
    ``limit``: read at most this many bytes (a ``$<len>`` replication payload).
    ``skim(type_code, offset)``: when it returns True, the value is stepped over without
    decoding (``Entry.value`` None, ``skimmed``, ``raw`` always set, whatever its size): for a
    second pass over a file already validated, where only the bytes are wanted.
    ``checked``: a value is skimmed only when it is at most ``raw_limit`` bytes and passes
    the checks a server makes as it loads it (:mod:`migrate.rdb.steps`), so that its bytes
    can go to a target unread (the only pass over a live source's RDB); any other is
    decoded (split into chunks, its defect named, or an empty key skipped).
    """

    def __init__(self, stream: Readable, *, raw_limit: int = 8 * 1024 * 1024,
                 chunk_elements: int = 10_000, chunk_bytes: int = 4 * 1024 * 1024,
                 limit: int | None = None, keep_raw: bool = True,
                 skim: Callable[[int, int], bool] | None = None, checked: bool = False):
        self.input = RdbInput(stream, limit=limit)
        self.raw_limit = raw_limit
        self.keep_raw = keep_raw
        self.skim = skim
        self.checked = checked
        self.decoded = 0  # values ``checked`` did not let pass as bytes
        self.producer = self._header()
        self.ctx = ValueContext(self.input, self.producer, chunk_elements, chunk_bytes)
        self.finished = False
        self.seconds_expiry = False  # a key used opcode 253 (Dragonfly rejects it)
        self._names: dict[int, tuple[str, str]] = {}  # type byte -> (kind, encoding), once

    # --- header --------------------------------------------------------------------------
    def _header(self) -> Producer:
        inp = self.input
        head = inp.read(9)
        if head.startswith(b"REDIS") and head[5:].isdigit():
            version = int(head[5:])
            if version not in REDIS_VERSIONS:
                raise RdbFormatError(5, f"RDB version {version} ({head.decode()}) is not "
                                        "supported: this reader knows REDIS0001-0012")
            return Producer("REDIS", version, "redis")
        if head.startswith(b"VALKEY") and head[6:].isdigit():
            version = int(head[6:])
            if version not in VALKEY_VERSIONS:
                raise RdbFormatError(6, f"Valkey RDB version {version} is not supported: "
                                        "this reader knows VALKEY080 and VALKEY081")
            return Producer("VALKEY", version, "valkey")
        raise RdbFormatError(0, f"not an RDB file: wrong magic {head[:9]!r}",
                             "an RDB starts with REDIS00NN or VALKEYNNN")

    def _type_name(self, type_code: int, at: int) -> tuple[str, str]:
        """(kind, encoding) of a type byte, checked once per type byte (it depends on the
        producer only); a byte refused raises at every key that carries it."""
        names = self._names.get(type_code)
        if names is None:
            names = self._names[type_code] = self._check_type(type_code, at)
        return names

    def _check_type(self, type_code: int, at: int) -> tuple[str, str]:
        if self.producer.magic == "VALKEY":
            if type_code in VALKEY_TYPE_NAMES:
                return VALKEY_TYPE_NAMES[type_code]
            if type_code >= 22:
                raise RdbFormatError(at, f"unknown type {type_code} for "
                                         f"{self.producer.describe()}")
        elif type_code in FIELD_TTL_HASH_TYPES_REDIS and self.producer.rdb_version < 12:
            raise RdbFormatError(at, f"type {type_code} (hash with field TTLs) cannot appear "
                                     f"in RDB {self.producer.rdb_version}")
        names = TYPE_NAMES.get(type_code)
        if names is None:
            raise RdbFormatError(at, f"unknown type or opcode {type_code}")
        return names

    def _aux(self, name: bytes, value: bytes) -> None:
        p = self.producer
        if name == b"valkey-ver":
            p.flavor, p.server_version = "valkey", value.decode(errors="replace")
        elif name == b"redis-ver" and p.server_version is None:
            p.server_version = value.decode(errors="replace")
        elif name == b"df-ver" or name == b"dragonfly-ver":
            p.flavor, p.server_version = "dragonfly", value.decode(errors="replace")

    # --- records -------------------------------------------------------------------------
    def records(self) -> Iterator[Record]:
        """Every record in file order, ending with :class:`End` (CRC64 verified)."""
        inp = self.input
        skim = self.skim
        db = 0
        expire_ms: int | None = None
        idle: int | None = None
        freq: int | None = None
        while True:
            at = inp.offset
            op = inp.read_byte()
            if op < 64:  # a key (the common case first); unknown type bytes are refused there
                if skim is not None and op in SKIMMABLE and skim(op, at):
                    if not self.checked:
                        yield self._skimmed(op, at, db, expire_ms, idle, freq)
                    elif checked := self._checked(op, at, db, expire_ms, idle, freq):
                        yield checked
                    else:
                        self.decoded += 1
                        yield from self._entry(op, at, db, expire_ms, idle, freq)
                elif op == 0 and (plain := self._plain_string(at, db, expire_ms, idle, freq)):
                    yield plain
                else:
                    yield from self._entry(op, at, db, expire_ms, idle, freq)
                expire_ms = idle = freq = None
                continue
            if op == OP_EOF:
                yield self._end(at)
                return
            if op == OP_SELECTDB:
                db = read_length(inp)
                yield SelectDb(db, at)
            elif op == OP_RESIZEDB:
                yield ResizeDb(db, read_length(inp), read_length(inp), at)
            elif op == OP_AUX:
                name = read_string(inp)
                value = read_string(inp)
                self._aux(name, value)
                yield Aux(name, value, at)
            elif op == OP_EXPIRETIME_MS:
                expire_ms = read_ms_time(inp)
            elif op == OP_EXPIRETIME:
                expire_ms = int.from_bytes(inp.read(4), "little", signed=True) * 1000
                self.seconds_expiry = True
            elif op == OP_IDLE:
                idle = read_length(inp)
            elif op == OP_FREQ:
                freq = inp.read_byte()
            elif op == OP_FUNCTION2:
                yield Function(read_string(inp), at)
            elif op == OP_MODULE_AUX:
                module_id = read_length(inp)
                module, encver = module_type.decode_module_id(module_id)
                when_op = read_length(inp)
                if when_op != module_type.OP_UINT:
                    raise inp.error(f"module aux of {module!r} has a bad 'when' opcode", at)
                when = read_length(inp)
                module_type.skip_module_data(inp)
                yield ModuleAux(module, encver, when, at)
            elif op == OP_KEY_META and self.producer.magic == "VALKEY":
                name = read_string(inp)
                ranges = [(read_length(inp), read_length(inp))
                          for _ in range(read_length(inp))]
                yield SlotImport(name, ranges, at)
            elif op == OP_SLOT_INFO:
                yield SlotInfo(read_length(inp), read_length(inp), read_length(inp), at)
            elif op == OP_FUNCTION_PRE_GA:
                # Redis 7.0's release candidates: name, engine, an optional description and
                # the body; Redis 7.0 loads it as "#!<ENGINE> name=<name>" + body (rdb.c
                # rdbFunctionLoad), and so does this reader.
                name, engine = read_string(inp), read_string(inp)
                if read_length(inp):
                    read_string(inp)  # the description: GA libraries have none
                body = read_string(inp)
                yield Function(b"#!" + engine + b" name=" + name + b"\n" + body, at)
            else:
                raise inp.error(f"unknown opcode {op}", at)

    def _plain_string(self, at: int, db: int, expire_ms: int | None, idle: int | None,
                      freq: int | None) -> Entry | None:
        """The hot path: a string key (type byte 0, just read at ``at``) whose key and value
        are small plain strings whole in the buffer, as one Entry; or None, with nothing
        consumed past the type byte, for :meth:`_entry` to read it."""
        inp = self.input
        key_at = inp.offset
        key = inp.try_plain_string()
        if key is None:
            return None
        value_at = inp.offset
        value = inp.try_plain_string()
        if value is None or len(value) > self.ctx.chunk_bytes:
            inp.unread(inp.offset - key_at)  # the general reader takes it from the key
            return None
        kind, encoding = self._type_name(0, at)
        n = inp.offset - value_at
        raw = b"\x00" + inp.just_read(n) if self.keep_raw and n <= self.raw_limit else None
        return Entry(db, key, 0, kind, encoding, value, expire_ms, None, idle, freq, raw,
                     0, True, at, n + 1, 1)

    def _entry(self, type_code: int, at: int, db: int, expire_ms: int | None,
               idle: int | None, freq: int | None) -> Iterator[Entry]:
        kind, encoding = self._type_name(type_code, at)
        inp = self.input
        key = read_string(inp)
        if type_code == 0:  # fast path: a small plain string, whole in the buffer
            value_at = inp.offset
            value = inp.try_plain_string()
            if value is not None and len(value) <= self.ctx.chunk_bytes:
                n = inp.offset - value_at
                raw = b"\x00" + inp.just_read(n) if self.keep_raw and n <= self.raw_limit \
                    else None
                yield Entry(db, key, 0, kind, encoding, value, expire_ms, None, idle, freq, raw,
                            0, True, at, n + 1, 1)
                return
            if value is not None:  # bigger than a chunk: step back, the reader splits it
                inp.unread(inp.offset - value_at)
        capture = self.keep_raw
        if capture:
            inp.start_capture(self.raw_limit)
        value_at = inp.offset
        chunks = _READERS[kind](self.ctx, type_code)
        part = 0
        current = next(chunks)
        for nxt in chunks:
            if part == 0:
                inp.drop_capture()
                capture = False
            yield self._make(db, key, type_code, kind, encoding, current, expire_ms, idle, freq,
                             None, part, False, at, 0)
            part += 1
            current = nxt
        captured = inp.end_capture() if capture else None
        raw = bytes((type_code,)) + captured if captured is not None else None
        yield self._make(db, key, type_code, kind, encoding, current, expire_ms, idle, freq, raw,
                         part, True, at, inp.offset - value_at + 1)

    def _skimmed(self, type_code: int, at: int, db: int, expire_ms: int | None,
                 idle: int | None, freq: int | None) -> Entry:
        """A value stepped over, not decoded (``skim``): only its bytes, whatever its size."""
        kind, encoding = self._type_name(type_code, at)
        inp = self.input
        key = read_string(inp)
        if type_code in SINGLE_STRING:
            raw = _TYPE_BYTES[type_code] + (inp.take_string() or b"")
            count = 1 if type_code == 0 else 0
        else:
            inp.start_capture(1 << 62)
            count = skim_value(inp, type_code)
            raw = _TYPE_BYTES[type_code] + (inp.end_capture() or b"")
        return Entry(db, key, type_code, kind, encoding, None, expire_ms, None, idle, freq, raw,
                     0, True, at, len(raw), count, True)

    def _checked(self, type_code: int, at: int, db: int, expire_ms: int | None,
                 idle: int | None, freq: int | None) -> Entry | None:
        """A value stepped over and checked (``checked``), or None, nothing consumed."""
        kind, encoding = self._type_name(type_code, at)
        span = self.input.span(_STEPS[type_code], self.raw_limit)
        if span is None:
            return None
        buf, start, end = span
        b = buf[start]
        if b < 64:  # the key: nearly always a short plain string
            value_at = start + 1 + b
            key = buf[start + 1:value_at]
        else:
            key, value_at = string_at(buf, start)
        raw = _TYPE_BYTES[type_code] + buf[value_at:end]
        return Entry(db, key, type_code, kind, encoding, None, expire_ms, None, idle, freq, raw,
                     0, True, at, len(raw), 0, True)

    @staticmethod
    def _make(db: int, key: bytes, type_code: int, kind: str, encoding: str,
              chunk: tuple[object, int], expire_ms: int | None, idle: int | None,
              freq: int | None, raw: bytes | None, part: int, final: bool, at: int,
              size: int) -> Entry:
        value, count = chunk
        field_expires = None
        if kind == "hash":
            # a hash's chunk is (pairs, field_expires) (migrate/rdb/types/hash.py)
            value, field_expires = cast(tuple[object, dict[bytes, int] | None], value)
        # positional, in Entry's field order (keywords cost more, once per key)
        return Entry(db, key, type_code, kind, encoding, value, expire_ms, field_expires, idle,
                     freq, raw, part, final, at, size, count)

    def _end(self, at: int) -> End:
        self.finished = True
        if self.producer.rdb_version < 5:
            return End(0, False, at)
        computed = self.input.crc()
        stored = int.from_bytes(self.input.read(8), "little")
        if stored and stored != computed:
            raise RdbFormatError(at + 1, f"bad checksum: the file says {stored:016x}, its "
                                         f"content hashes to {computed:016x}")
        return End(stored, bool(stored), at)

    def entries(self) -> Iterator[Record]:
        """Alias of :meth:`records` (the documented name)."""
        return self.records()

    def unconsumed(self) -> bytes:
        """Bytes read past the RDB's end (replica mode: the start of the command stream)."""
        return self.input.unconsumed()


def read_file(path: str, **options: Any) -> Iterator[Record]:
    """Every record of an RDB file (convenience for tests and tools)."""
    with open(path, "rb") as fh:
        reader = RdbReader(fh, **options)
        yield from reader.records()
