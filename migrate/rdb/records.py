"""What the reader yields: one record per opcode of interest and one :class:`Entry` per key
(or per chunk of a big key). Plain data classes, shared by inspect, copy and live sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Type bytes (redis src/rdb.h; Valkey 9 reuses 22 for its own field-TTL hash).
TYPE_NAMES: dict[int, tuple[str, str]] = {
    0: ("string", "string"),
    1: ("list", "linkedlist"),
    2: ("set", "hashtable"),
    3: ("zset", "skiplist-v1"),
    4: ("hash", "hashtable"),
    5: ("zset", "skiplist"),
    6: ("module", "module-pre-ga"),
    7: ("module", "module"),
    9: ("hash", "zipmap"),
    10: ("list", "ziplist"),
    11: ("set", "intset"),
    12: ("zset", "ziplist"),
    13: ("hash", "ziplist"),
    14: ("list", "quicklist"),
    15: ("stream", "listpacks-v1"),
    16: ("hash", "listpack"),
    17: ("zset", "listpack"),
    18: ("list", "quicklist2"),
    19: ("stream", "listpacks-v2"),
    20: ("set", "listpack"),
    21: ("stream", "listpacks-v3"),
    22: ("hash", "metadata-pre-ga"),  # Redis 7.4 release candidates
    23: ("hash", "listpack-ex-pre-ga"),
    24: ("hash", "metadata"),  # Redis 7.4+: hash with field TTLs, hashtable
    25: ("hash", "listpack-ex"),  # Redis 7.4+: hash with field TTLs, listpack
}
VALKEY_TYPE_NAMES: dict[int, tuple[str, str]] = {
    22: ("hash", "hash2-field-ttl"),  # Valkey 9: hash with field TTLs
}
FIELD_TTL_HASH_TYPES_REDIS = frozenset({22, 23, 24, 25})
FIELD_TTL_HASH_TYPES_VALKEY = frozenset({22})

StreamId = tuple[int, int]


@dataclass
class Producer:
    """Who wrote the RDB: from the header magic and the AUX fields."""

    magic: str  # "REDIS" or "VALKEY"
    rdb_version: int
    flavor: str = "redis"  # redis | valkey | dragonfly | unknown
    server_version: str | None = None  # redis-ver / valkey-ver AUX field

    def describe(self) -> str:
        ver = f" {self.server_version}" if self.server_version else ""
        return f"{self.flavor}{ver} (RDB {self.rdb_version}, magic {self.magic})"


@dataclass
class Aux:
    name: bytes
    value: bytes
    offset: int


@dataclass
class SelectDb:
    db: int
    offset: int


@dataclass
class ResizeDb:
    db: int
    keys: int
    expires: int
    offset: int


@dataclass
class SlotInfo:
    slot: int
    keys: int
    expires: int
    offset: int


@dataclass
class SlotImport:
    """An atomic slot migration this node was importing when it saved (Valkey 9, opcode 243
    under ``VALKEY08x``: the job's name and its slot ranges; the keys imported so far follow
    as ordinary keys)."""

    name: bytes
    ranges: list[tuple[int, int]]
    offset: int


@dataclass
class Function:
    """A function library (opcode 245): the library's source code, as FUNCTION LOAD takes."""

    code: bytes
    offset: int

    @property
    def name(self) -> str:
        first = self.code.split(b"\n", 1)[0].decode(errors="replace")
        for part in first.split():
            if part.startswith("name="):
                return part[5:]
        return "?"


@dataclass
class ModuleAux:
    module: str
    encver: int
    when: int
    offset: int


@dataclass
class ModuleValue:
    """A module data type value (type 7): its module type name and encoding version. The
    value itself is opaque: it can only go to a target that has the same module, as a
    DUMP payload (Entry.raw)."""

    name: str
    encver: int
    module_id: int


@dataclass
class StreamConsumer:
    name: bytes
    seen_time_ms: int
    active_time_ms: int | None
    pending: list[StreamId]


@dataclass
class StreamPending:
    id: StreamId
    delivery_time_ms: int
    delivery_count: int


@dataclass
class StreamGroup:
    name: bytes
    last_id: StreamId
    entries_read: int | None
    pending: list[StreamPending]
    consumers: list[StreamConsumer]


@dataclass
class StreamValue:
    """A stream, or a chunk of one: ``entries`` in ID order (deleted entries left out).
    The metadata and the groups are set on the final chunk only (``complete``)."""

    entries: list[tuple[StreamId, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    complete: bool = False
    length: int = 0
    last_id: StreamId = (0, 0)
    first_id: StreamId | None = None
    max_deleted_id: StreamId | None = None
    entries_added: int | None = None
    groups: list[StreamGroup] = field(default_factory=list)


@dataclass
class Entry:
    """One key, or one chunk of a big key (``part`` > 0 or ``final`` False).

    value by ``kind`` (``type_code`` is the RDB type byte, ``encoding`` its name):
      string: bytes (a chunk of the string for big ones: append them in order)
      list: list[bytes] in order; set: list[bytes]
      zset: list[tuple[bytes, float]] (member, score)
      hash: list[tuple[bytes, bytes]] (field, value); ``field_expires`` {field: unix ms}
      stream: StreamValue; module: ModuleValue
    ``raw`` is the serialized value (type byte onward) for a DUMP payload, present only on a
    key read in one piece whose serialized size is within the reader's ``raw_limit``.
    """

    db: int
    key: bytes
    type_code: int
    kind: str
    encoding: str
    value: Any
    expire_ms: int | None = None
    field_expires: dict[bytes, int] | None = None
    idle_s: int | None = None
    freq: int | None = None
    raw: bytes | None = None
    part: int = 0
    final: bool = True
    offset: int = 0  # byte offset of the key's record (its type byte)
    size: int = 0  # serialized bytes of the whole value (on the final part)
    elements: int = 0  # elements in this part (1 for a string)
    skimmed: bool = False  # value not decoded (None): only ``raw`` (RdbReader ``skim``)

    @property
    def empty(self) -> bool:
        """An empty list, set, zset or hash (Redis skips these on load)."""
        return self.elements == 0 and self.part == 0 and self.final and \
            not self.skimmed and self.kind in ("list", "set", "zset", "hash")

    @property
    def whole(self) -> bool:
        """True for a key read in one piece (not chunked)."""
        return self.part == 0 and self.final


@dataclass
class End:
    """The EOF opcode: ``checksum`` as stored (0 = written without one), ``verified``
    True when it matched the CRC64 of the file."""

    checksum: int
    verified: bool
    offset: int


Record = Aux | SelectDb | ResizeDb | SlotInfo | SlotImport | Function | ModuleAux | Entry \
    | End
