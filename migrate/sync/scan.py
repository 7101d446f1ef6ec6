"""``--mode scan``: for sources that refuse SYNC/PSYNC (managed services).

1. Check ``notify-keyspace-events`` on the source (CONFIG SET it only with
   ``--set-notify-keyspace-events``, and put the old value back at the end).
2. Subscribe to keyspace notifications BEFORE the scan starts, so no change is missed
   between the two: every notified key is marked dirty.
3. SCAN every database and copy each batch: DUMP + PEXPIRETIME, RESTORE ... REPLACE ABSTTL
   when the target can load the source's RDB version, else typed commands
   (:mod:`migrate.sync.typed`). Dirty keys are copied again (a key gone from the source is
   deleted on the target) between batches and after the scan.
4. Caught up: a heartbeat written on the source has come through the notifications and shows
   on the target. ``--follow`` keeps copying dirty keys.

What it cannot see: FLUSHALL/FLUSHDB and SWAPDB (no per-key notification). The source's
INFO commandstats is read when the subscription starts and about once a second after: a
call of one of them stops the sync (:class:`UnseenCommands`), since the target no longer
matches; ``--resume`` re-scans. Also unseen: any change while the notification link is
down, and changes to a key whose notification class is disabled. XREADGROUP, XACK and
XCLAIM notify nothing either (seen here), so known streams are copied again every
``STREAM_REFRESH_S`` seconds.
Resuming re-scans everything and removes target keys the source no longer has, because
changes made while kvmigrate was stopped are unseen.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, cast

import redis

from migrate.apply.target import restores_type
from migrate.compat.rdb import can_load_rdb_of
from migrate.errors import KvmError
from migrate.keyglob import compile_glob
from migrate.keyspec import command_name, named_key
from migrate.protocol.latency import LatencyProbe
from migrate.protocol.pipeline import PipelineWriter
from migrate.protocol.ratelimit import RateLimiter, limit
from migrate.protocol.rawconn import RawConn, Reply, is_error
from migrate.protocol.resp import Arg
from migrate.state.coordination import STOP, BarrierRequests
from migrate.state.ledger import Ledger
from migrate.sync.engine import Worker, lag_window_of
from migrate.sync.heartbeat import Heartbeat
from migrate.sync.modes import SCAN
from migrate.sync.options import SyncOptions
from migrate.sync.rules import refuse_failed_keys
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher
from migrate.sync.typed import TypedCaps, TypedStats, key_commands
from migrate.sync.written import KeyReservoir
from migrate.verify.model import HEARTBEAT_KEY, is_internal

# Keyspace event classes scan mode needs: generic, string, list, set, hash, zset, expired,
# evicted, stream (A is their alias).
NEEDED_CLASSES = set("g$lshzxet")
BATCH = 500
FLUSH_S = 0.5  # the initial scan waits for the target's replies this often
STREAM_REFRESH_S = 2.0  # streams are copied again this often (group reads notify nothing)
MAX_REFRESHED_STREAMS = 10_000
BIG_KEY_BYTES = 8 << 20  # a key bigger than this (MEMORY USAGE) is copied in chunks
CHUNKED_KINDS = (b"string", b"list", b"set", b"zset", b"hash")
DUMP_BATCH_BYTES = 64 << 20  # DUMP payloads asked for in one round, at most (estimated)
_CHANNEL = re.compile(rb"^__key(space|event)@(\d+)__:(.*)$", re.S)


class UnseenCommands:
    """Calls of commands that send no keyspace notification (SWAPDB, FLUSHALL, FLUSHDB, and
    the FUNCTION commands that change libraries), counted from the source's INFO
    commandstats: scan mode cannot follow them, so one seen during the sync stops it."""

    NAMES = ("swapdb", "flushall", "flushdb", "function|load", "function|delete",
             "function|flush", "function|restore")
    INTERVAL_S = 1.0

    def __init__(self, source: Source):
        self.source = source
        self.baseline = self._calls()
        self._checked = time.monotonic()

    def _calls(self) -> dict[str, int]:
        stats = self.source.client.info("commandstats")
        return {n: int((stats.get(f"cmdstat_{n}") or {}).get("calls", 0)) for n in self.NAMES}

    def check(self, *, now: bool = False) -> None:
        if not now and time.monotonic() - self._checked < self.INTERVAL_S:
            return
        self._checked = time.monotonic()
        calls = self._calls()
        for name in self.NAMES:
            if calls[name] < self.baseline[name]:
                raise KvmError("the source's command statistics were reset (CONFIG RESETSTAT) "
                               "during a scan-mode sync: kvmigrate can no longer tell whether "
                               "SWAPDB or FLUSHALL ran; the sync stopped",
                               "run the sync again with --resume (it re-scans everything)")
            if calls[name] > self.baseline[name]:
                raise KvmError(f"the source ran {name.replace('|', ' ').upper()} during a "
                               "scan-mode sync; it "
                               "sends no keyspace notification, so the target no longer "
                               "matches the source; the sync stopped",
                               "run the sync again with --resume (it re-scans everything and "
                               "removes keys the source no longer has), or use --mode replica "
                               "where the source allows PSYNC")


def notify_flags(value: str) -> set[str]:
    flags = set(value)
    if "A" in flags:
        flags |= NEEDED_CLASSES
    return flags


def notify_problem(value: str) -> str | None:
    flags = notify_flags(value)
    missing = "".join(sorted(NEEDED_CLASSES - flags))
    if not flags & {"K", "E"}:
        return f"notify-keyspace-events is {value!r} on the source (no K or E)"
    if missing:
        return f"notify-keyspace-events is {value!r} on the source (missing classes {missing})"
    return None


def _read_notify(source: Source) -> str | None:
    try:
        # str or bytes keys, as the client decodes
        value = cast(dict[Any, Any], source.client.config_get("notify-keyspace-events"))
    except redis.ResponseError:
        return None  # CONFIG refused (managed service): cannot check
    got = value.get("notify-keyspace-events", value.get(b"notify-keyspace-events", ""))
    return got.decode() if isinstance(got, bytes) else str(got)


def refusal(source: Source, target: Target, opts: SyncOptions) -> str | None:
    value = _read_notify(source)
    if value is None or opts.set_notify_keyspace_events:
        return None
    problem = notify_problem(value)
    if problem:
        return (f"{problem}, so changes during the copy would be missed; set it to KA on the "
                "source or add --set-notify-keyspace-events")
    return None


class DirtyKeys:
    """Keys changed on the source since they were last copied, in arrival order; each with
    the number of its latest event, so a barrier knows when everything before it is copied."""

    def __init__(self) -> None:
        self._keys: OrderedDict[tuple[int, bytes], int] = OrderedDict()
        self._lock = threading.Lock()
        self.events = 0
        self.written = KeyReservoir()

    def add(self, db: int, key: bytes) -> None:
        with self._lock:
            self.written.add(db, key)
            self.events += 1
            self._keys[(db, key)] = self.events
            self._keys.move_to_end((db, key))

    def oldest_event(self) -> int | None:
        """The event number of the longest-waiting key (None: nothing waits)."""
        with self._lock:
            return next(iter(self._keys.values()), None)

    def take(self, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            out: list[tuple[int, bytes]] = []
            while self._keys and len(out) < limit:
                out.append(self._keys.popitem(last=False)[0])
            return out

    def __len__(self) -> int:
        return len(self._keys)


class Notifications:
    """A thread reading keyspace notifications from the source into :class:`DirtyKeys`."""

    def __init__(self, source: Source, dirty: DirtyKeys, keyspace_channel: bool):
        self.conn = RawConn(source.endpoint)
        self.dirty = dirty
        pattern = b"__keyspace@*__:*" if keyspace_channel else b"__keyevent@*__:*"
        self.conn.send("PSUBSCRIBE", pattern)
        reply = None
        deadline = time.monotonic() + 10
        while reply is None and time.monotonic() < deadline:
            reply = self.conn.read(1.0)
        if not (isinstance(reply, list) and reply and reply[0] == b"psubscribe"):
            raise KvmError(f"the source did not confirm PSUBSCRIBE: {reply!r}")
        self.error: BaseException | None = None
        self.barrier_seen: int | None = None  # the last ``PING <token>`` answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                msg = self.conn.read(0.5)
                if isinstance(msg, list) and len(msg) == 2 and msg[0] == b"pong":
                    # every notification sent before it has been read (same connection)
                    self.barrier_seen = int(msg[1]) if msg[1].isdigit() else None
                    continue
                if not isinstance(msg, list) or len(msg) != 4 or msg[0] != b"pmessage":
                    continue
                match = _CHANNEL.match(msg[2])
                if match is None:
                    continue
                db = int(match.group(2))
                key = match.group(3) if match.group(1) == b"space" else msg[3]
                self.dirty.add(db, key)
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc

    def ping(self, token: int) -> None:
        """``PING <token>`` on the subscribed connection: its answer comes after every
        notification already sent (the cut-over's barrier, :mod:`migrate.state.coordination`)."""
        self.conn.send("PING", str(token))

    def check(self) -> None:
        if self.error is not None:
            raise KvmError(f"lost the keyspace notification link to the source ({self.error}); "
                           "changes after this point are not seen",
                           "re-run with --resume: it re-scans and removes what the source "
                           "deleted")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(3)
        self.conn.close()


_RESTORE = b"*5\r\n$7\r\nRESTORE\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$7\r\nREPLACE\r\n"
_RESTORE_ABSTTL = _RESTORE.replace(b"*5", b"*6", 1) + b"$6\r\nABSTTL\r\n"


def _pairs(first: bytes, second: bytes) -> bytes:
    """The RESP of ``first key`` then ``second key`` (each a command name of one or more
    words), with ``%d``/``%b`` for the key's length and bytes in each."""
    def one(name: bytes) -> bytes:
        words = name.split()
        return b"*%d\r\n" % (len(words) + 1) + b"".join(
            b"$%d\r\n%b\r\n" % (len(w), w) for w in words) + b"$%d\r\n%b\r\n"
    return one(first) + one(second)


_PROBE = _pairs(b"TYPE", b"MEMORY USAGE")
_DUMP_EXPIRETIME = _pairs(b"DUMP", b"PEXPIRETIME")
_DUMP_PTTL = _pairs(b"DUMP", b"PTTL")


class TargetWriter:
    """One pipelined writer, switching databases with SELECT as keys arrive."""

    def __init__(self, target: Target):
        self.writer: PipelineWriter = target.writer(0)
        self.writer.keep_labels()
        self.db = 0
        self.checked_errors = 0

    def send(self, db: int, *args: Arg) -> None:
        if db != self.db:
            self.writer.send("SELECT", db)
            self.db = db
        self.writer.send(*args, label=(command_name(args), named_key(args), db))

    def restore(self, db: int, restores: list[tuple[bytes, int, bytes, bool]]) -> None:
        """``RESTORE key ttl payload REPLACE [ABSTTL]`` for each (key, ttl, payload,
        absttl), encoded here and sent as one batch (a cluster's writer routes each)."""
        if not restores:
            return
        if getattr(self.writer, "routed", False):
            for key, ttl, payload, absttl in restores:
                self.send(db, "RESTORE", key, ttl, payload, "REPLACE",
                          *(("ABSTTL",) if absttl else ()))
            return
        if db != self.db:
            self.writer.send("SELECT", db)
            self.db = db
        data = b"".join([(_RESTORE_ABSTTL if absttl else _RESTORE) % (
            len(key), key, len(t := b"%d" % ttl), t, len(payload), payload)
            for key, ttl, payload, absttl in restores])
        self.writer.send_encoded(data, len(restores), [("RESTORE", key, db)
                                                       for key, _, _, _ in restores])

    def check(self) -> None:
        stats = self.writer.stats
        if stats.errors:
            first = stats.first_errors[0] if stats.first_errors else "?"
            hint = None
            if "payload version" in first or "checksum" in first:
                hint = "the target cannot RESTORE the source's DUMP format; report this"
            where = ""
            if isinstance(stats.first_error_label, tuple):
                name, key, db = stats.first_error_label
                shown = f" on key {key.decode(errors='replace')!r}" if key else ""
                where = f" ({name}{shown} in db {db})"
            raise KvmError(f"the target refused {stats.errors} write(s), first{where}: {first}",
                           hint)

    def flush(self) -> None:
        self.writer.flush()
        self.check()

    def close(self) -> None:
        self.writer.close()


class ScanSync:
    mode = SCAN

    def __init__(self, source: Source, target: Target, opts: SyncOptions, ledger: Ledger,
                 status: StatusPublisher):
        self.source, self.target, self.opts = source, target, opts
        self.ledger, self.status = ledger, status
        self.use_dump = can_load_rdb_of(target.identity, source.identity).ok
        self.caps = TypedCaps(source.has("PEXPIRETIME"), source.has("HPEXPIRETIME"),
                              target.has("HPEXPIREAT"),
                              stream_metadata=target.identity.flavor != "dragonfly",
                              target_field_ttl_seconds=target.has("HEXPIRE"))
        self.typed_stats = TypedStats()
        self._restorable: dict[tuple[int, bool], bool] = {}  # (type byte, Valkey's) -> ...
        self.match = compile_glob(opts.match) if opts.match else None
        self.reader = RawConn(source.endpoint)
        # --max-ops-per-s: the reads paced, and the source's latency measured meanwhile
        self.limiter = RateLimiter(opts.max_ops_per_s) if opts.max_ops_per_s else None
        self.latency = LatencyProbe(source.endpoint).start() if self.limiter else None
        if self.limiter is not None:
            self.reader = limit(self.reader, self.limiter)
        self.writer = TargetWriter(target)
        self.dirty = DirtyKeys()
        self.notifications: Notifications | None = None
        self.heartbeat = Heartbeat(source.client, target.endpoint.client(db=self.tdb(0))) \
            if opts.heartbeat else None
        self.keys_copied = 0
        self.bytes_copied = 0
        self.keys_chunked = 0  # big keys copied in chunks (typed commands) rather than DUMPed
        self._restore_notify: str | None = None
        self._rate = (time.monotonic(), 0)
        self.worker = Worker("apply", "copying changes", self._apply_loop)
        self.streams: set[tuple[int, bytes]] = set()
        self._streams_refreshed = time.monotonic()
        self.barrier = BarrierRequests(ledger.paths.root)
        self.cut_over = False  # a cut-over asked the applier to stop: write nothing more

    # --- setup ------------------------------------------------------------------------------
    def start(self) -> None:
        value = _read_notify(self.source)
        if value is None:
            self.opts.observer.note("cannot read notify-keyspace-events on the source (CONFIG "
                                    "refused): assuming it is enabled for K and A")
            value = "KA"
        elif notify_problem(value):
            wanted = "".join(sorted(notify_flags(value) | {"K"} | NEEDED_CLASSES))
            self.source.client.config_set("notify-keyspace-events", wanted)
            self._restore_notify = value
            self.opts.observer.note(f"--set-notify-keyspace-events: set it to {wanted!r} on the "
                                    f"source (was {value!r}; restored at the end)")
            value = wanted
        self.unseen = UnseenCommands(self.source)  # before the subscription: nothing missed
        self.notifications = Notifications(self.source, self.dirty,
                                           "K" in notify_flags(value))
        how = "DUMP/RESTORE" if self.use_dump else "typed commands (the target cannot load " \
                                                   "the source's DUMP format)"
        self.opts.observer.note(f"scan: subscribed to keyspace notifications; copying with "
                                f"{how}. FLUSHALL/FLUSHDB and SWAPDB send no notification: "
                                "one seen on the source stops the sync. Not seen: changes "
                                "while the notification link is down; streams are re-copied "
                                "every "
                                f"{STREAM_REFRESH_S:.0f} s for consumer-group changes")
        self.status.update(copy_method="dump-restore" if self.use_dump else "typed")

    # --- copying ------------------------------------------------------------------------------
    def wanted(self, key: bytes) -> bool:
        if is_internal(key):
            return key == HEARTBEAT_KEY
        return self.match is None or self.match.fullmatch(key) is not None

    def _restores(self, payload: bytes) -> bool:
        """Whether the target's RESTORE reads this DUMP payload's value type."""
        version = int.from_bytes(payload[-10:-8], "little") if len(payload) >= 11 else 0
        kind = (payload[0], version >= 80)
        known = self._restorable.get(kind)
        if known is None:
            known = self._restorable[kind] = restores_type(
                self.target.identity, payload[0], "VALKEY" if version >= 80 else "REDIS")
        return known

    def tdb(self, db: int) -> int:
        return self.opts.db_map.to(db)

    def copy_keys(self, db: int, keys: list[bytes]) -> None:
        keys = [k for k in keys if self.wanted(k)]
        if not keys:
            return
        self.reader.select(db)
        tdb = self.tdb(db)
        probe = self._call_pairs(_PROBE, keys)
        types = probe[0::2]
        self._note_streams(db, keys, types)
        typed = [] if self.use_dump else keys
        if self.use_dump:
            for part in self._dump_batches(keys, types, probe[1::2], typed):
                self._copy_dumped(tdb, part, typed)
            self.keys_chunked += len(typed)
        now = int(time.time() * 1000)
        for key in typed:
            for cmd in key_commands(self.reader, key, self.caps, self.typed_stats, now):
                self.bytes_copied += sum(len(a) for a in cmd if isinstance(a, bytes))
                self.writer.send(tdb, *cmd)
        self.keys_copied += len(keys)
        self.writer.check()

    @staticmethod
    def _dump_batches(keys: list[bytes], types: list[Reply], sizes: list[Reply],
                      typed: list[bytes]) -> Iterator[list[bytes]]:
        """``keys`` in batches of at most :data:`DUMP_BATCH_BYTES` (by MEMORY USAGE), so the
        DUMP replies of one batch stay bounded in memory; a key bigger than
        :data:`BIG_KEY_BYTES` is added to ``typed`` instead (copied in chunks, never as one
        payload). A stream keeps its DUMP (typed commands give pending entries past the
        first 1,000 an approximate delivery time), and so does a module type."""
        part: list[bytes] = []
        held = 0
        for key, kind, size in zip(keys, types, sizes, strict=True):
            size = size if isinstance(size, int) else 0
            if size > BIG_KEY_BYTES and kind in CHUNKED_KINDS:
                typed.append(key)
                continue
            if part and held + size > DUMP_BATCH_BYTES:
                yield part
                part, held = [], 0
            part.append(key)
            held += size
        if part:
            yield part

    def _call_pairs(self, pair: bytes, keys: list[bytes]) -> list[Reply]:
        """Two commands per key (``pair``, from :func:`_pairs`), encoded here, in one
        round trip."""
        self.reader.send_encoded(b"".join([pair % (len(k), k, len(k), k) for k in keys]),
                                 2 * len(keys))
        return self.reader.read_replies(2 * len(keys))

    def _copy_dumped(self, tdb: int, keys: list[bytes], typed: list[bytes]) -> None:
        """DUMP + RESTORE of ``keys``; those whose payload the target cannot read are added
        to ``typed``."""
        if not keys:
            return
        absolute = self.caps.source_expiretime
        replies = self._call_pairs(_DUMP_EXPIRETIME if absolute else _DUMP_PTTL, keys)
        restores: list[tuple[bytes, int, bytes, bool]] = []
        for i, key in enumerate(keys):
            payload, ttl = replies[2 * i], replies[2 * i + 1]
            if payload is None or is_error(payload):
                self.writer.restore(tdb, restores)  # in order: what came before first
                restores = []
                self.writer.send(tdb, "DEL", key)
                continue
            if not self._restores(payload):  # e.g. a field-TTL hash on Dragonfly
                typed.append(key)
                continue
            self.bytes_copied += len(payload)
            if isinstance(ttl, int) and ttl >= 0:
                restores.append((key, ttl if absolute else max(ttl, 1), payload, absolute))
            else:
                restores.append((key, 0, payload, False))
        self.writer.restore(tdb, restores)

    def _note_streams(self, db: int, keys: list[bytes], types: list) -> None:
        for key, kind in zip(keys, types, strict=True):
            if kind == b"stream":
                if len(self.streams) < MAX_REFRESHED_STREAMS:
                    self.streams.add((db, key))
            else:
                self.streams.discard((db, key))

    def refresh_streams(self, force: bool = False) -> None:
        """Mark every known stream dirty again: consumer-group reads, acks and claims
        (XREADGROUP, XACK, XCLAIM) change a stream without any keyspace notification."""
        now = time.monotonic()
        if force or now - self._streams_refreshed >= STREAM_REFRESH_S:
            self._streams_refreshed = now
            for db, key in list(self.streams):
                self.dirty.add(db, key)

    def drain(self, limit: int = 5000) -> int:
        """Copy dirty keys again; returns how many."""
        taken = self.dirty.take(limit)
        by_db: dict[int, list[bytes]] = {}
        for db, key in taken:
            by_db.setdefault(db, []).append(key)
        for db, keys in by_db.items():
            for i in range(0, len(keys), BATCH):
                self.copy_keys(db, keys[i:i + BATCH])
        return len(taken)

    def _scan_db(self, db: int, cursor: bytes) -> None:
        """SCAN ``db`` from ``cursor`` and copy each batch. The target's replies are waited
        for about every :data:`FLUSH_S` (and at the end), not after each batch, so the target
        writes one batch while the source reads the next; a refusal already answered stops
        the scan at the next batch, and the writer's bounded bytes in flight hold the pace."""
        flushed = time.monotonic()
        while not self.opts.stop.is_set():
            self.reader.select(db)
            cursor, keys = self.reader.call("SCAN", cursor, "COUNT", BATCH)
            self.copy_keys(db, keys)
            self.drain()
            if cursor == b"0" or time.monotonic() - flushed >= FLUSH_S:
                self.writer.flush()
                flushed = time.monotonic()
                self.ledger.offsets[f"scan_db{db}"] = cursor.decode()
            self.publish("initial-copy", db=db)
            if cursor == b"0":
                return

    def initial_copy(self) -> None:
        resumed = bool(self.ledger.phase_record("initial-copy"))
        with self.ledger.phase("initial-copy") as counters:
            for db in sorted(self.source.keyspace()):
                if self.opts.stop.is_set():
                    break
                self._scan_db(db, b"0")
            if resumed:
                removed = self.sweep_target()
                counters["removed_on_resume"] = removed
                self.opts.observer.note(f"resume: removed {removed} target key(s) the source "
                                        "no longer has")
            counters.update(keys=self.keys_copied, bytes=self.bytes_copied,
                            keys_chunked=self.keys_chunked)

    def sweep_target(self) -> int:
        """Delete target keys (in the copied scope) that the source does not have."""
        removed = 0
        tconn = RawConn(self.target.endpoint)
        try:
            for tdb in sorted(self.target.keyspace()):
                sdb = self.opts.db_map.back(tdb)
                tconn.select(tdb)
                cursor: bytes = b"0"
                while True:
                    cursor, keys = tconn.call("SCAN", cursor, "COUNT", BATCH)
                    keys = [k for k in keys if self.wanted(k) and not is_internal(k)]
                    self.reader.select(sdb)
                    there = self.reader.call_many([("EXISTS", k) for k in keys])
                    for key, n in zip(keys, there, strict=True):
                        if n == 0:
                            self.writer.send(tdb, "DEL", key)
                            removed += 1
                    if cursor == b"0":
                        break
            self.writer.flush()
        finally:
            tconn.close()
        return removed

    # --- the engine interface used by run.py --------------------------------------------------
    def catch_up(self) -> None:
        if not self.ledger.done("initial-copy") or self.opts.resume:
            self.initial_copy()
        with self.ledger.phase("catch-up") as counters:
            self.refresh_streams(force=True)
            stamp = self.heartbeat.beat() if self.heartbeat else None
            deadline = time.monotonic() + self.opts.stall_timeout_s
            while not self.opts.stop.is_set():
                assert self.notifications is not None
                self.notifications.check()
                self.unseen.check()
                moved = self.drain()
                self.writer.flush()
                self.publish("catch-up")
                if not moved and not len(self.dirty):
                    seen = self.heartbeat.seen() if self.heartbeat else None
                    if stamp is None or (seen or 0) >= stamp:
                        break
                    time.sleep(0.02)
                if time.monotonic() > deadline:
                    raise KvmError("the heartbeat written on the source did not come through "
                                   "the keyspace notifications in time",
                                   "check notify-keyspace-events on the source")
            self.unseen.check(now=True)
            counters.update(keys=self.keys_copied, bytes=self.bytes_copied,
                            events=self.dirty.events)
        self.report_losses()
        self.worker.start()

    def report_losses(self) -> None:
        """What the target could not take stops the sync, unless its class of loss was
        allowed with --allow-loss (then it is counted in the status and said once)."""
        stats = self.typed_stats
        self.status.update(field_ttls_dropped=stats.field_ttls_dropped,
                           stream_counters_dropped=stats.stream_counters_dropped,
                           skipped_types=stats.skipped_types)
        if stats.field_ttls_dropped:
            what = (f"{stats.field_ttls_dropped} hash field TTL(s) could not be copied: "
                    f"{self.target} has no field TTLs")
            if "field-ttl" not in self.opts.allow_loss:
                raise KvmError(f"{what} (those fields would never expire there); the sync "
                               "stopped", "--allow-loss field-ttl copies them without TTLs")
            self.opts.observer.note(f"{what}: allowed by --allow-loss field-ttl")
        if stats.stream_counters_dropped:
            what = (f"{stats.stream_counters_dropped} stream(s) with deleted entries: "
                    f"{self.target} cannot set a stream's entries-added and max-deleted-id "
                    "(consumer-group lag would read differently)")
            if "stream-counters" not in self.opts.allow_loss:
                raise KvmError(f"{what}; the sync stopped",
                               "--allow-loss stream-counters copies the streams without them")
            self.opts.observer.note(f"{what}: allowed by --allow-loss stream-counters")
        failed: dict[str, int] = {}
        for kind, n in stats.skipped_types.items():
            failed[f"{kind} values: no way to write them to {self.target} "
                   f"({'vectorset' if kind == 'vectorset' else 'module'} data)"] = n
        refuse_failed_keys(failed, self.opts.allow_loss, self.opts.observer.note)

    def publish(self, phase: str, **extra: Any) -> None:
        now = time.monotonic()
        then, before = self._rate
        rate = (self.keys_copied - before) / (now - then) if now > then else 0.0
        if now - then >= 1.0:
            self._rate = (now, self.keys_copied)
        if self.limiter is not None and self.latency is not None:
            extra.update(throttle=self.limiter.figures(),
                         source_latency=self.latency.figures())
        self.status.update(sync_phase=phase, keys=self.keys_copied,
                           bytes_copied=self.bytes_copied, dirty=len(self.dirty),
                           ops_per_s=round(rate, 1), lag_bytes=None, **extra)

    def _apply_loop(self, stop: threading.Event) -> None:
        """After catch-up: copy dirty keys as they come (verification and --follow run
        meanwhile), and answer a cut-over's barrier requests (:mod:`migrate.state.coordination`)."""
        notifications = self.notifications
        assert notifications is not None
        done: int | None = None
        waiting: tuple[int, int] | None = None  # (token, last event before its pong)
        while not stop.is_set():
            notifications.check()
            request = self.barrier.poll()
            if request == STOP:
                self.writer.flush()
                self.cut_over = True
                self.barrier.stopped(done)
                self.opts.observer.note("cut-over: stopped copying changes to the target")
                return
            if isinstance(request, int):
                notifications.ping(request)
            seen = notifications.barrier_seen  # every event before its pong is counted
            if seen is not None and seen != done and (waiting is None or
                                                      waiting[0] != seen):
                self.refresh_streams(force=True)  # group reads notify nothing
                waiting = (seen, self.dirty.events)
            else:
                self.refresh_streams()
            moved = self.drain()
            self.writer.flush()
            if waiting is not None:
                oldest = self.dirty.oldest_event()
                if oldest is None or oldest > waiting[1]:  # all before it copied
                    self.barrier.applied(waiting[0])
                    done, waiting = waiting[0], None
                    continue
            if not moved:
                stop.wait(0.002 if waiting or request else 0.01)

    def check(self) -> None:
        self.worker.check()

    def tick(self) -> None:
        """About a second of --follow: a heartbeat and the live figures."""
        self.worker.check()
        if not self.cut_over:
            self.unseen.check()
        if self.cut_over:  # the source is paused or fenced now: no more heartbeats
            self.opts.stop.wait(1.0)
            return
        if self.heartbeat:
            self.heartbeat.beat()
        self.opts.stop.wait(1.0)
        self.publish("following",
                     lag_ms=self.heartbeat.lag_ms() if self.heartbeat else None)

    def written_keys(self) -> list[tuple[int, bytes]]:
        return self.dirty.written.snapshot()

    def lag_window_s(self) -> float:
        return lag_window_of(self.heartbeat)

    def figures(self) -> dict[str, Any]:
        """No offsets in scan mode: the lag is the keys changed on the source and not yet
        copied (``lag_keys``)."""
        stats = self.writer.writer.stats
        return {"mode": self.mode, "keys": self.keys_copied, "bytes_copied": self.bytes_copied,
                "lag_bytes": None, "lag_keys": len(self.dirty), "events": self.dirty.events,
                "commands": stats.sent, "target_errors": stats.errors}

    def close(self) -> None:
        stopped = self.worker.stop()
        if stopped:  # never drive the writer while the applier runs
            with contextlib.suppress(KvmError, OSError):
                self.writer.flush()
        if self.notifications is not None:
            self.notifications.close()
        if self.heartbeat:
            self.heartbeat.remove()
            with contextlib.suppress(redis.RedisError):
                self.target.client.delete(HEARTBEAT_KEY)
        if self._restore_notify is not None:
            with contextlib.suppress(redis.RedisError):
                self.source.client.config_set("notify-keyspace-events", self._restore_notify)
        self.writer.close()
        self.reader.close()
        if self.latency is not None:
            self.latency.close()

