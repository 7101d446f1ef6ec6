"""What an RDB holds, in one pass with bounded memory: producer, AUX fields, keys by
database, type and encoding, expiries, the biggest keys, functions, modules."""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from migrate.rdb.reader import RdbReader
from migrate.rdb.records import Aux, End, Entry, Function, ModuleAux, Producer, SlotImport, SlotInfo

TOP = 10


@dataclass
class KeyInfo:
    db: int
    key: bytes
    kind: str
    encoding: str
    size: int
    elements: int


@dataclass
class RdbSummary:
    producer: Producer
    file_bytes: int = 0
    aux: dict[str, str] = field(default_factory=dict)
    keys: int = 0
    by_db: Counter[int] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    by_encoding: Counter[tuple[str, str]] = field(default_factory=Counter)
    type_codes: Counter[int] = field(default_factory=Counter)
    with_ttl: int = 0
    expired: int = 0  # TTL already in the past when read
    earliest_expiry_ms: int | None = None
    latest_expiry_ms: int | None = None
    field_ttl_hashes: int = 0
    fields_with_ttl: int = 0
    empty_keys: int = 0
    biggest: list[KeyInfo] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    modules: Counter[str] = field(default_factory=Counter)  # module type name -> values
    module_aux: list[str] = field(default_factory=list)
    slot_info: int = 0
    # slot ranges ("a-b") a Valkey 9 cluster node was importing (an atomic slot migration
    # under way) when it saved: its keys of those slots are a copy in progress
    slot_imports: list[str] = field(default_factory=list)
    checksum: str = "none"  # verified | absent (written without one) | none (RDB < 5)
    seconds_expiry: bool = False
    irregular: set[int] = field(default_factory=set)  # offsets of keys that are chunked,
    # bigger than ``raw_limit``, empty or with field TTLs: a second pass must decode these
    # keys whose expiry is further ahead than ``summarize(expiry_limit_ms=...)`` allows, and
    # the first of them as (db, key, expire_ms); the first key of each module type
    beyond_expiry_limit: int = 0
    first_beyond_expiry_limit: tuple[int, bytes, int] | None = None
    first_module_key: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        p = self.producer
        return {
            "producer": {"flavor": p.flavor, "version": p.server_version, "magic": p.magic,
                         "rdb_version": p.rdb_version},
            "file_bytes": self.file_bytes,
            "checksum": self.checksum,
            "aux": self.aux,
            "keys": self.keys,
            "empty_keys_skipped": self.empty_keys,
            "by_db": {str(k): v for k, v in sorted(self.by_db.items())},
            "by_type": dict(sorted(self.by_type.items())),
            "by_encoding": {f"{t}/{e}": n for (t, e), n in sorted(self.by_encoding.items())},
            "expiries": {"keys_with_ttl": self.with_ttl, "already_expired": self.expired,
                         "earliest_ms": self.earliest_expiry_ms,
                         "latest_ms": self.latest_expiry_ms},
            "field_ttl": {"hashes": self.field_ttl_hashes, "fields": self.fields_with_ttl},
            "biggest_keys": [{"db": k.db, "key": k.key.decode(errors="backslashreplace"),
                              "type": k.kind, "encoding": k.encoding, "bytes": k.size,
                              "elements": k.elements} for k in self.biggest],
            "functions": self.functions,
            "modules": dict(self.modules),
            "module_aux": self.module_aux,
            "slot_info_records": self.slot_info,
        }


class Expiries:
    """Keys with a TTL, counted as they are read (:func:`summarize` and the fast walk,
    migrate.rdb.walk, both fill a summary with it)."""

    def __init__(self, now_ms: int, expiry_limit_ms: int | None):
        self.now = now_ms
        self.beyond = None if expiry_limit_ms is None else now_ms + expiry_limit_ms
        self.with_ttl = self.expired = self.beyond_count = 0
        self.earliest: int | None = None
        self.latest: int | None = None
        self.first_beyond: tuple[int, bytes, int] | None = None

    def add(self, expire_ms: int) -> bool:
        """Count a key; True when it is the first beyond the limit (the caller then sets
        ``first_beyond``)."""
        self.with_ttl += 1
        if expire_ms <= self.now:
            self.expired += 1
        if self.earliest is None or expire_ms < self.earliest:
            self.earliest = expire_ms
        if self.latest is None or expire_ms > self.latest:
            self.latest = expire_ms
        if self.beyond is not None and expire_ms > self.beyond:
            self.beyond_count += 1
            return self.beyond_count == 1
        return False

    def into(self, s: RdbSummary) -> None:
        s.with_ttl, s.expired = self.with_ttl, self.expired
        s.earliest_expiry_ms, s.latest_expiry_ms = self.earliest, self.latest
        s.beyond_expiry_limit, s.first_beyond_expiry_limit = self.beyond_count, \
            self.first_beyond


class Biggest:
    """The ``TOP`` biggest of what is offered, by size (ties: the first offered first)."""

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, Any]] = []
        self.floor = -1  # the size an item must reach to enter, once the list is full
        self._seq = 0

    def offer(self, size: int, item: Any) -> int:
        """Offer ``item``; returns the new floor (callers skip smaller items cheaply)."""
        self._seq += 1
        entry = (size, -self._seq, item)
        heap = self.heap
        if len(heap) < TOP:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)
        if len(heap) == TOP:
            self.floor = heap[0][0]
        return self.floor

    def items(self) -> list[Any]:
        """Biggest first."""
        return [item for _, _, item in sorted(self.heap, key=lambda e: e[:2], reverse=True)]


def count_keys(s: RdbSummary, db: int, type_code: int, kind: str, encoding: str,
               n: int) -> None:
    s.keys += n
    s.by_db[db] += n
    s.by_type[kind] += n
    s.by_encoding[(kind, encoding)] += n
    s.type_codes[type_code] += n


def summarize(stream: BinaryIO, *, now_ms: int | None = None,
              progress: Callable[[int], None] | None = None,
              raw_limit: int = 4 * 1024 * 1024,
              expiry_limit_ms: int | None = None) -> RdbSummary:
    """Read the whole stream (raising RdbFormatError on any defect) and summarize it;
    ``progress(bytes_read)`` is called now and then. ``expiry_limit_ms``: count the keys
    that expire more than this far ahead (a target's longest TTL)."""
    expiries = Expiries(int(time.time() * 1000) if now_ms is None else now_ms,
                        expiry_limit_ms)
    reader = RdbReader(stream, keep_raw=False)
    s = RdbSummary(reader.producer)
    biggest = Biggest()
    floor = -1  # size a key must pass to enter the top list (once it is full)
    elements = 0
    field_ttl_fields = 0
    count = 0
    # keys counted per (db, type byte, kind, encoding): the Counters are derived at the end
    groups: Counter[tuple[int, int, str, str]] = Counter()
    for rec in reader.records():
        count += 1
        if progress is not None and count % 2048 == 0:
            progress(reader.input.offset)
        if type(rec) is Entry:
            elements += rec.elements
            if rec.field_expires:
                field_ttl_fields += len(rec.field_expires)
            if not rec.final:
                continue
            empty = rec.empty
            if rec.part or empty or field_ttl_fields or rec.size > raw_limit:
                s.irregular.add(rec.offset)  # chunked, empty, with field TTLs or too big
            if empty:
                s.empty_keys += 1
                elements = field_ttl_fields = 0
                continue
            groups[(rec.db, rec.type_code, rec.kind, rec.encoding)] += 1
            if rec.expire_ms is not None and expiries.add(rec.expire_ms):
                expiries.first_beyond = (rec.db, rec.key, rec.expire_ms)
            if field_ttl_fields:
                s.field_ttl_hashes += 1
                s.fields_with_ttl += field_ttl_fields
            if rec.kind == "module":
                s.modules[rec.value.name] += 1
                s.first_module_key.setdefault(rec.value.name, (rec.db, rec.key))
            if rec.size >= floor:
                floor = biggest.offer(rec.size, KeyInfo(rec.db, rec.key, rec.kind,
                                                        rec.encoding, rec.size, elements))
            elements = field_ttl_fields = 0
        elif isinstance(rec, Aux):
            name = rec.name.decode(errors="backslashreplace")
            value = rec.value.decode(errors="backslashreplace")
            s.aux[name] = value if len(value) <= 80 else value[:77] + "..."
            if name == "slot-info":
                s.slot_info += 1
        elif isinstance(rec, Function):
            s.functions.append(rec.name)
        elif isinstance(rec, ModuleAux):
            s.module_aux.append(f"{rec.module} (encver {rec.encver})")
        elif isinstance(rec, SlotInfo):
            s.slot_info += 1
        elif isinstance(rec, SlotImport):
            s.slot_imports += [f"{a}-{b}" for a, b in rec.ranges]
        elif isinstance(rec, End):
            s.checksum = "verified" if rec.verified else (
                "absent" if reader.producer.rdb_version >= 5 else "none")
    for (db, type_code, kind, encoding), n in groups.items():
        count_keys(s, db, type_code, kind, encoding, n)
    expiries.into(s)
    s.seconds_expiry = reader.seconds_expiry
    s.file_bytes = reader.input.offset
    s.biggest = biggest.items()
    return s
