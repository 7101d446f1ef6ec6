"""Entries to commands, for one target: pure logic, no I/O (unit-testable, reused by live
sync's replica mode).

* Fast path: ``RESTORE key ttl payload ABSTTL [REPLACE]`` with the value's serialized bytes
  re-footed for the target's RDB version, when the key came whole, fits the command bound
  and the target reads that encoding (:meth:`Target.restores`).
* Typed path otherwise: SET/APPEND, RPUSH, SADD, ZADD, HSET (+ HPEXPIREAT or HEXPIRE for
  field TTLs), XADD + XSETID + XGROUP CREATE/CREATECONSUMER + XCLAIM for streams; every
  command bounded by ``max_elements`` and ``max_bytes``; the key's TTL last, as PEXPIREAT.
* Keys already expired are skipped (and their later parts); empty collections skipped.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from migrate.apply.target import STREAM_TYPES, Target
from migrate.protocol.resp import Arg
from migrate.rdb.crc64 import crc64
from migrate.rdb.records import Entry, StreamValue

Command = tuple[Arg, ...]
_Item = TypeVar("_Item", bound=tuple[Arg, ...])  # one element's arguments (_bounded)
INVALID_ENTRIES_READ = 1 << 63  # saved as (uint64)-1 when a group's counter is unknown
TMP_GROUP = b"__kvmigrate_tmp__"


STREAM_COUNTERS = ("streams with deleted entries, written without their entries-added and "
                   "max-deleted-id counters: the target cannot set them (Dragonfly 1.40.1; "
                   "consumer-group lag reads differently there)")


@dataclass
class ApplyOptions:
    max_elements: int = 10_000  # per command
    max_bytes: int = 4 * 1024 * 1024  # per command (approximate: argument bytes)
    replace: bool = False  # overwrite keys that exist (RESTORE REPLACE / DEL first)
    skip_unsupported: bool = True  # count keys the target cannot hold as failed, go on
    # a target without hash field TTLs: write such hashes without their TTLs (counted)
    # instead of failing them (sync --allow-loss field-ttl)
    drop_field_ttls: bool = False
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))


@dataclass
class ApplyStats:
    keys: Counter[str] = field(default_factory=Counter)  # written keys by type
    restored: int = 0  # keys written with RESTORE
    transcoded: int = 0  # keys written with typed commands
    expired_skipped: int = 0
    expired_fields_skipped: int = 0
    field_ttls_dropped: int = 0  # fields written without their TTL (drop_field_ttls)
    empty_skipped: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # reason -> keys not written
    commands: int = 0
    functions: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"keys": sum(self.keys.values()), "by_type": dict(sorted(self.keys.items())),
                "restored": self.restored, "transcoded": self.transcoded,
                "expired_skipped": self.expired_skipped,
                "expired_fields_skipped": self.expired_fields_skipped,
                "field_ttls_dropped": self.field_ttls_dropped,
                "empty_skipped": self.empty_skipped,
                "failed": sum(self.failed.values()), "failed_by_reason": dict(self.failed),
                "functions": self.functions, "commands": self.commands}


def _sid(i: tuple[int, int]) -> bytes:
    return b"%d-%d" % i


class CommandBuilder:
    """``commands(entry)`` gives the commands that write one entry (or one part of a big
    key) to the target; :attr:`stats` counts what was written, skipped and refused."""

    def __init__(self, target: Target, producer_magic: str, options: ApplyOptions | None = None):
        self.target = target
        self.magic = producer_magic
        self.opt = options or ApplyOptions()
        self.stats = ApplyStats()
        self._skip_key: tuple[int, bytes] | None = None
        # per type byte: does the target's RESTORE read it (asked once, not once per key)
        self._restorable = [target.restores(t, producer_magic) for t in range(256)]
        self._dump_footer = target.dump_version.to_bytes(2, "little")
        self._lru = target.flavor != "dragonfly"
        self._max_bytes = self.opt.max_bytes
        # restored by one RESTORE, nothing after it (a stream's group counters may need one)
        self._restored_as_is = [ok and not (t in STREAM_TYPES and target.sets_entries_read_after)
                                for t, ok in enumerate(self._restorable)]
        # RESTORE key 0 payload [REPLACE], RESTORE key ms payload ABSTTL [REPLACE], as RESP
        replace = b"$7\r\nREPLACE\r\n" if self.opt.replace else b""
        extra = 1 if self.opt.replace else 0
        self._restore_resp = b"*%d\r\n$7\r\nRESTORE\r\n" % (4 + extra) + \
            b"$%d\r\n%b\r\n$1\r\n0\r\n$%d\r\n%b\r\n" + replace
        self._restore_at_resp = b"*%d\r\n$7\r\nRESTORE\r\n" % (5 + extra) + \
            b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$6\r\nABSTTL\r\n" + replace
        self._max_ttl_ms = target.max_ttl_ms

    def _expiry_fits(self, expire_ms: int) -> bool:
        """Not expired, and not beyond the target's longest TTL."""
        now = self.opt.now_ms()
        return now < expire_ms and (self._max_ttl_ms is None or
                                    expire_ms - now <= self._max_ttl_ms)

    # --- entry point -----------------------------------------------------------------------
    def commands(self, e: Entry) -> list[Command]:
        raw = e.raw
        if raw is not None and self._skip_key is None and self._plain(e) and \
                len(raw) + 10 <= self.opt.max_bytes and self._restorable[e.type_code] and \
                (e.expire_ms is None or self._expiry_fits(e.expire_ms)):
            return self._restore(e)  # hot path: a whole key's bytes, RESTORE
        ident = (e.db, e.key)
        if e.part > 0 and self._skip_key == ident:
            if e.final:
                self._skip_key = None
            return []
        self._skip_key = None
        if e.empty:
            self.stats.empty_skipped += 1
            return []
        if e.expire_ms is not None:
            now = self.opt.now_ms()  # one clock reading for both checks
            if e.expire_ms <= now:
                return self._skip(e, expired=True)
            if self._max_ttl_ms is not None and e.expire_ms - now > self._max_ttl_ms:
                return self._fail(e, f"expiry more than {self._max_ttl_ms // 1000:,} s ahead: "
                                     f"{self.target} would clamp it silently")
        if e.kind == "module" and not self._fast(e):
            return self._fail(e, f"module value ({e.value.name}) without a usable payload")
        if e.field_expires and self.target.field_ttl_mode is None:
            if not self.opt.drop_field_ttls:
                return self._fail(e, f"hash field TTLs: {self.target} has no field expiry")
            self.stats.field_ttls_dropped += len(e.field_expires)
        if self._fast(e):
            return self._restore(e)
        out = list(self._typed(e))
        if e.final:
            if e.expire_ms is not None:
                out.append(("PEXPIREAT", e.key, e.expire_ms))
            self.stats.transcoded += 1
            self.stats.keys[e.kind] += 1
        self.stats.commands += len(out)
        return out

    @staticmethod
    def _plain(e: Entry) -> bool:
        """Nothing for the checks below to refuse or drop: a skimmed value, or a whole
        decoded one with elements and no field TTLs."""
        return e.skimmed or (e.elements > 0 and e.part == 0 and e.final and
                             not e.field_expires)

    def _skip(self, e: Entry, *, expired: bool) -> list[Command]:
        if expired:
            self.stats.expired_skipped += 1
        if not e.final:
            self._skip_key = (e.db, e.key)
        return []

    def _fail(self, e: Entry, reason: str) -> list[Command]:
        self.stats.failed[reason] += 1
        if not e.final:
            self._skip_key = (e.db, e.key)
        return []

    def _fast(self, e: Entry) -> bool:
        return (e.whole and e.raw is not None and len(e.raw) + 10 <= self.opt.max_bytes
                and self._restorable[e.type_code]
                and not (e.field_expires and self._has_expired_field(e)))

    def _has_expired_field(self, e: Entry) -> bool:
        now = self.opt.now_ms()
        return any(t <= now for t in (e.field_expires or {}).values())

    def _restore(self, e: Entry) -> list[Command]:
        body = (e.raw or b"") + self._dump_footer  # make_payload, without the lookups
        payload = body + crc64(body).to_bytes(8, "little")
        cmd: tuple[Arg, ...]
        if e.expire_ms:
            cmd = ("RESTORE", e.key, e.expire_ms, payload, "ABSTTL")
        else:
            cmd = ("RESTORE", e.key, 0, payload)
        if self.opt.replace:
            cmd += ("REPLACE",)
        if self._lru:  # LRU idle time / LFU counter, as saved (Dragonfly has neither)
            if e.idle_s is not None:
                cmd += ("IDLETIME", e.idle_s)
            elif e.freq is not None:
                cmd += ("FREQ", e.freq)
        out: list[Command] = [cmd]
        if e.kind == "stream" and isinstance(e.value, StreamValue) and \
                self.target.sets_entries_read_after:
            out += self._entries_read(e.key, e.value)
        stats = self.stats
        stats.restored += 1
        stats.keys[e.kind] += 1
        stats.commands += len(out)
        return out

    def restore_command(self, e: Entry) -> bytes | None:
        """The RESP bytes of the one RESTORE that writes a whole entry as the bytes the
        source sent (:meth:`commands`'s hot path), encoded here for the commonest shape: no
        LRU idle time or LFU counter, an expiry that fits the target, no stream counters to
        set again. None for anything else, which :meth:`commands` takes."""
        raw = e.raw
        if raw is None or e.idle_s is not None or e.freq is not None or \
                not self._restored_as_is[e.type_code] or len(raw) + 10 > self._max_bytes or \
                self._skip_key is not None or not (e.skimmed or (
                    e.elements > 0 and e.part == 0 and e.final and not e.field_expires)):
            return None
        body = raw + self._dump_footer
        payload = body + crc64(body).to_bytes(8, "little")
        key = e.key
        expire_ms = e.expire_ms
        if expire_ms is None:
            data = self._restore_resp % (len(key), key, len(payload), payload)
        elif self._expiry_fits(expire_ms):
            at = b"%d" % expire_ms
            data = self._restore_at_resp % (len(key), key, len(at), at, len(payload), payload)
        else:
            return None
        stats = self.stats
        stats.restored += 1
        stats.keys[e.kind] += 1
        stats.commands += 1
        return data

    # --- typed path ------------------------------------------------------------------------
    def _bounded(self, head: list[Arg], items: list[_Item],
                 size: Callable[[_Item], int]) -> Iterator[Command]:
        """``head + flattened items``, split so no command passes the bounds."""
        batch: list[Arg] = []
        count = nbytes = 0
        for item in items:
            s = size(item)
            if batch and (count + 1 > self.opt.max_elements or nbytes + s > self.opt.max_bytes):
                yield (*head, *batch)
                batch, count, nbytes = [], 0, 0
            batch.extend(item)
            count += 1
            nbytes += s
        if batch:
            yield (*head, *batch)

    def _typed(self, e: Entry) -> Iterator[Command]:
        key = e.key
        if e.part == 0 and self.opt.replace:
            yield ("DEL", key)
        if e.kind == "string":
            yield ("SET" if e.part == 0 else "APPEND", key, e.value)
        elif e.kind == "list":
            yield from self._bounded(["RPUSH", key], [(v,) for v in e.value],
                                     lambda it: len(it[0]))
        elif e.kind == "set":
            yield from self._bounded(["SADD", key], [(v,) for v in e.value],
                                     lambda it: len(it[0]))
        elif e.kind == "zset":
            yield from self._bounded(["ZADD", key], [(repr(s), m) for m, s in e.value],
                                     lambda it: len(it[1]) + 24)
        elif e.kind == "hash":
            yield from self._hash(e)
        elif e.kind == "stream":
            yield from self._stream(key, e.value, e.part == 0)

    def _hash(self, e: Entry) -> Iterator[Command]:
        pairs = e.value
        fe = e.field_expires or {}
        now = self.opt.now_ms()
        if fe:
            expired = {f for f, t in fe.items() if t <= now}
            if expired:
                self.stats.expired_fields_skipped += len(expired)
                pairs = [(f, v) for f, v in pairs if f not in expired]
        yield from self._bounded(["HSET", e.key], list(pairs),
                                 lambda it: len(it[0]) + len(it[1]))
        if not fe:
            return
        groups: dict[int, list[bytes]] = {}
        for f, _ in pairs:
            t = fe.get(f)
            if t is not None:
                groups.setdefault(t, []).append(f)
        mode = self.target.field_ttl_mode
        if mode is None:  # drop_field_ttls: the values are written, the TTLs counted
            return
        for t, fields in sorted(groups.items()):
            if mode == "hpexpireat":
                head: list[Arg] = ["HPEXPIREAT", e.key, t]
            else:  # Dragonfly: seconds from now, rounded up
                head = ["HEXPIRE", e.key, max(1, math.ceil((t - now) / 1000))]
            for cmd in self._bounded([], [(f,) for f in fields], lambda it: len(it[0])):
                yield (*head, "FIELDS", len(cmd), *cmd)

    @staticmethod
    def _entries_read(key: bytes, v: StreamValue) -> list[Command]:
        """Each group's entries-read counter, set again (see Target.sets_entries_read_after)."""
        return [("XGROUP", "SETID", key, g.name, _sid(g.last_id), "ENTRIESREAD", g.entries_read)
                for g in v.groups
                if g.entries_read is not None and g.entries_read < INVALID_ENTRIES_READ]

    def _stream(self, key: bytes, v: StreamValue, first: bool) -> Iterator[Command]:
        for eid, fields in v.entries:
            flat: list[Arg] = [x for pair in fields for x in pair]
            yield ("XADD", key, _sid(eid), *flat)
        if not v.complete:
            return
        created = first and not v.entries  # an empty stream: create it bare
        if created:
            yield ("XGROUP", "CREATE", key, TMP_GROUP, "0", "MKSTREAM")
            yield ("XGROUP", "DESTROY", key, TMP_GROUP)
        setid: list[Arg] = ["XSETID", key, _sid(v.last_id)]
        if self.target.stream_metadata and v.entries_added is not None:
            setid += ["ENTRIESADDED", v.entries_added]
            if v.max_deleted_id is not None:
                setid += ["MAXDELETEDID", _sid(v.max_deleted_id)]
        elif v.entries_added is not None and (v.entries_added != v.length or
                                              v.max_deleted_id not in (None, (0, 0))):
            # entries were deleted: the target keeps its own counts, which differ
            self.stats.failed[STREAM_COUNTERS] += 1
        yield tuple(setid)
        for g in v.groups:
            create: list[Arg] = ["XGROUP", "CREATE", key, g.name, _sid(g.last_id)]
            if self.target.stream_metadata and g.entries_read is not None and \
                    g.entries_read < INVALID_ENTRIES_READ:
                create += ["ENTRIESREAD", g.entries_read]
            yield tuple(create)
            if self.target.sets_entries_read_after:
                yield from self._entries_read(key, StreamValue(groups=[g]))
            owner = {pid: c.name for c in g.consumers for pid in c.pending}
            for c in g.consumers:
                yield ("XGROUP", "CREATECONSUMER", key, g.name, c.name)
            for p in g.pending:
                consumer = owner.get(p.id)
                if consumer is None:
                    continue
                yield ("XCLAIM", key, g.name, consumer, 0, _sid(p.id), "TIME",
                       p.delivery_time_ms, "RETRYCOUNT", p.delivery_count, "FORCE", "JUSTID")
