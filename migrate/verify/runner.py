"""Verification runs: a sample or a full walk of both servers, counts per database, and a
re-check of every suspect after the lag window so writes still in flight are not reported.

Memory stays bounded: keys are walked in SCAN batches and compared in pipelined batches; only
the suspects (at most ``max_suspects``) are kept between the walk and the re-checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import redis

from migrate.dbmap import DbMap, parse_db_map  # noqa: F401 - the CLI imports it here
from migrate.endpoint import Endpoint, has_command
from migrate.errors import UsageError
from migrate.keyglob import compile_glob
from migrate.protocol.cluster.router import Conn, RoutedConn, connect
from migrate.protocol.cluster.topology import is_cluster
from migrate.protocol.latency import LatencyProbe
from migrate.protocol.ratelimit import RateLimiter, limit
from migrate.verify.compare import CompareOptions, Side, compare_batch
from migrate.verify.model import (
    HEARTBEAT_KEY,
    INTERNAL_PREFIX,
    DbCount,
    Mismatch,
    VerifyReport,
    is_internal,
)


@dataclass
class VerifyOptions:
    full: bool = False
    sample: int = 1000
    match: str | None = None
    ttl_tolerance_ms: int = 2000
    db_map: DbMap = field(default_factory=DbMap)
    lag_window_s: float = 1.0  # how long to wait before looking at a suspect again
    rechecks: int = 3
    batch: int = 1024
    max_listed: int = 1000
    max_suspects: int = 20000
    # progress(keys checked, keys to check): the total from INFO keyspace (None with --match)
    progress: Callable[[int, int | None], None] | None = None
    # keys the source's stream wrote (db, key): a sample also compares every one of them
    written: list[tuple[int, bytes]] = field(default_factory=list)
    # classes of loss the user allowed (sync --allow-loss): their differences are known
    allow_loss: frozenset[str] = frozenset()
    # a ceiling on the commands sent to the source (None: none), and its latency measured
    max_ops_per_s: float | None = None


def _keyspace(client: redis.Redis, conn: Conn) -> dict[int, int]:
    """{db: keys} of a server, or of a whole cluster (its primaries' DBSIZEs summed)."""
    if isinstance(conn, RoutedConn):
        return conn.keyspace()
    return keyspace(client.info("keyspace"))


def keyspace(client_info: dict) -> dict[int, int]:
    """INFO keyspace as {db: keys}."""
    out = {}
    for name, value in client_info.items():
        if str(name).startswith("db"):
            out[int(str(name)[2:])] = int(value["keys"] if isinstance(value, dict) else value)
    return out


class Verifier:
    def __init__(self, source: Endpoint, target: Endpoint, opts: VerifyOptions):
        self.source, self.target, self.opts = source, target, opts
        scli, tcli = source.client(), target.client()
        sconn, tconn = connect(source, is_cluster(scli)), connect(target, is_cluster(tcli))
        self.limiter = RateLimiter(opts.max_ops_per_s) if opts.max_ops_per_s else None
        if self.limiter is not None:
            sconn = limit(sconn, self.limiter)
        self._sdbs = _keyspace(scli, sconn)
        self._tdbs = _keyspace(tcli, tconn)
        self.src = Side(sconn, has_command(scli, "PEXPIRETIME"),
                        has_command(scli, "HPEXPIRETIME"))
        self.tgt = Side(tconn, has_command(tcli, "PEXPIRETIME"),
                        has_command(tcli, "HPEXPIRETIME"))
        scli.close()
        tcli.close()
        self.copts = CompareOptions(opts.ttl_tolerance_ms, 1000)
        self.internal_seen = False  # a walk met keys of kvmigrate's own (the heartbeat)
        self.match = opts.match.encode() if opts.match else None
        self.match_rx = compile_glob(opts.match) if opts.match else None

    def close(self) -> None:
        self.src.conn.close()
        self.tgt.conn.close()

    def tdb(self, db: int) -> int:
        return self.opts.db_map.to(db)

    def source_dbs(self) -> list[int]:
        """Source databases to look at: those with keys, and the sources of target databases
        with keys (so keys only on the target are found)."""
        dbs = set(self._sdbs)
        for t in self._tdbs:
            dbs.add(self.opts.db_map.back(t))
        return sorted(dbs)

    # --- walking ---------------------------------------------------------------------------
    def _scan(self, conn: Conn, db: int) -> Iterator[list[bytes]]:
        conn.select(db)
        cursor: bytes = b"0"
        while True:
            args: list = ["SCAN", cursor, "COUNT", self.opts.batch]
            if self.match:
                args += ["MATCH", self.match]
            cursor, keys = conn.call(*args)
            if INTERNAL_PREFIX in b"\0".join(keys):  # rare: filter key by key
                self.internal_seen = True
                keys = [k for k in keys if not is_internal(k)]
            if keys:
                yield keys
            if cursor == b"0":
                return

    def _sample_keys(self, db: int, wanted: int) -> list[bytes]:
        conn = self.src.conn
        conn.select(db)
        if self.match or wanted >= self._sdbs.get(db, 0):  # a filter, or the whole database
            found: list[bytes] = []
            for batch in self._scan(conn, db):
                found.extend(batch)
                if len(found) >= wanted:
                    break
            return found[:wanted]
        # RANDOMKEY repeats itself: draw again for what is missing, a few rounds at most.
        seen: dict[bytes, None] = {}
        for _ in range(6):
            missing = wanted - len(seen)
            if missing <= 0:
                break
            before = len(seen)
            for key in conn.call_many([("RANDOMKEY",)] * missing):
                if isinstance(key, bytes) and not is_internal(key):
                    seen.setdefault(key)
            if len(seen) == before:
                break
        return list(seen)[:wanted]

    def walk(self, report: VerifyReport) -> list[Mismatch]:
        suspects: list[Mismatch] = []
        total = sum(self._sdbs.values()) or 1
        to_check = None if self.match else (total if self.opts.full
                                             else min(self.opts.sample, total))
        unwritten = self._unwritten() if self.opts.full and not self.match else None
        for db in self.source_dbs():
            found = len(suspects)
            self.internal_seen = False
            if self.opts.full:
                batches: Iterator[list[bytes]] = self._scan(self.src.conn, db)
            else:
                share = max(1, round(self.opts.sample * self._sdbs.get(db, 0) / total))
                batches = _chunks(self._sample_keys(db, share) if db in self._sdbs else [],
                                  self.opts.batch)
            for keys in batches:
                suspects.extend(compare_batch(self.src, self.tgt, db, self.tdb(db), keys,
                                              self.copts))
                report.keys_checked += len(keys)
                if self.opts.progress:
                    self.opts.progress(report.keys_checked, to_check)
                if len(suspects) >= self.opts.max_suspects:
                    return suspects
            if self.opts.full and not (unwritten is not None and len(suspects) == found
                                       and not self.internal_seen
                                       and self._same_size(db, unwritten)):
                suspects.extend(self._extra_keys(db))
        if not self.opts.full and self.opts.written:
            suspects.extend(self._written(report))
        return suspects

    def _written(self, report: VerifyReport) -> list[Mismatch]:
        """The keys the stream wrote (beyond the random sample): they are where a lost or
        mistranslated write shows."""
        by_db: dict[int, list[bytes]] = {}
        for db, key in dict.fromkeys(self.opts.written):
            if not is_internal(key) and (self.match_rx is None or self.match_rx.fullmatch(key)):
                by_db.setdefault(db, []).append(key)
        found: list[Mismatch] = []
        for db, keys in by_db.items():
            for chunk in _chunks(keys, self.opts.batch):
                found.extend(compare_batch(self.src, self.tgt, db, self.tdb(db), chunk,
                                           self.copts))
                report.keys_checked += len(chunk)
                report.written_checked += len(chunk)
        return found

    def _unwritten(self) -> tuple[Marks, Marks] | None:
        """Both servers' write marks (see :func:`write_marks`), when both have them."""
        if isinstance(self.src.conn, RoutedConn) or isinstance(self.tgt.conn, RoutedConn):
            return None
        smarks, tmarks = write_marks(self.src.conn), write_marks(self.tgt.conn)
        return None if smarks is None or tmarks is None else (smarks, tmarks)

    def _same_size(self, db: int, before: tuple[Marks, Marks]) -> bool:
        """Whether no key can be in the target database without being in the source's:
        neither server wrote anything since ``before`` (so the walk saw every source key,
        each found on the target) and the target holds as many keys as the source."""
        self.src.conn.select(db)
        self.tgt.conn.select(self.tdb(db))
        sizes = self.src.conn.call("DBSIZE"), self.tgt.conn.call("DBSIZE")
        return (write_marks(self.src.conn), write_marks(self.tgt.conn)) == before and \
            sizes[0] == sizes[1]

    def _extra_keys(self, db: int) -> list[Mismatch]:
        """Keys in the target database that the source database lacks."""
        found: list[Mismatch] = []
        for keys in self._scan(self.tgt.conn, self.tdb(db)):
            self.src.conn.select(db)
            # one EXISTS for the batch; key by key only when some are absent (or a cluster
            # refuses keys of several slots in one command)
            if self.src.conn.call("EXISTS", *keys) == len(keys):
                continue
            there = self.src.conn.call_many([("EXISTS", k) for k in keys])
            absent = [k for k, n in zip(keys, there, strict=True) if n == 0]
            found.extend(compare_batch(self.src, self.tgt, db, self.tdb(db), absent,
                                       self.copts))
        return found

    def _fingerprints(self, keys: set[tuple[int, bytes]]) -> dict[tuple[int, bytes], int]:
        """A hash of each key's serialized value on the source (DUMP), to tell whether it
        was written between two looks."""
        out: dict[tuple[int, bytes], int] = {}
        by_db: dict[int, list[bytes]] = {}
        for db, key in keys:
            by_db.setdefault(db, []).append(key)
        for db, ks in by_db.items():
            self.src.conn.select(db)
            for key, payload in zip(ks, self.src.conn.call_many([("DUMP", k) for k in ks]),
                                    strict=True):
                out[(db, key)] = hash(payload) if isinstance(payload, bytes) else 0
        return out

    def recheck(self, suspects: list[Mismatch], report: VerifyReport) -> list[Mismatch]:
        """Look at each suspect again after the lag window. A key still different whose
        source value changed between every two looks is *unsettled* (written faster than the
        copy can show it), listed in the report but not counted as a mismatch."""
        rounds = 0
        changed: dict[tuple[int, bytes], int] = {}
        prints = self._fingerprints({(m.db, m.key) for m in suspects}) if suspects else {}
        for _ in range(self.opts.rechecks):
            if not suspects:
                break
            rounds += 1
            time.sleep(self.opts.lag_window_s)
            report.rechecked += len(suspects)
            by_db: dict[int, list[bytes]] = {}
            for m in suspects:
                by_db.setdefault(m.db, []).append(m.key)
            still: list[Mismatch] = []
            for db, keys in by_db.items():
                for chunk in _chunks(list(dict.fromkeys(keys)), self.opts.batch):
                    still.extend(compare_batch(self.src, self.tgt, db, self.tdb(db), chunk,
                                               self.copts))
            report.cleared_on_recheck += len({(m.db, m.key) for m in suspects}) - \
                len({(m.db, m.key) for m in still})
            now = self._fingerprints({(m.db, m.key) for m in still}) if still else {}
            for ident, value in now.items():
                if prints.get(ident) != value:
                    changed[ident] = changed.get(ident, 0) + 1
            prints = now
            suspects = still
        if rounds == 0:
            return suspects
        # A key the source wrote between every two looks (its value, or whether it exists at
        # all: a key renamed back and forth) cannot be compared while writes go on.
        unsettled = {(m.db, m.key) for m in suspects if changed.get((m.db, m.key)) == rounds}
        report.unsettled = [m for m in suspects if (m.db, m.key) in unsettled]
        return [m for m in suspects if (m.db, m.key) not in unsettled]

    # --- counts ------------------------------------------------------------------------------
    def counts(self) -> list[DbCount]:
        out = []
        for db in self.source_dbs():
            out.append(DbCount(db, self.tdb(db), self._dbsize(self.src.conn, db),
                               self._dbsize(self.tgt.conn, self.tdb(db))))
        return out

    @staticmethod
    def _dbsize(conn: Conn, db: int) -> int:
        conn.select(db)
        size, internal = conn.call_many([("DBSIZE",), ("EXISTS", HEARTBEAT_KEY)])
        return int(size) - int(internal)

    def stable_counts(self) -> tuple[list[DbCount], list[str]]:
        """Counts per database; when they differ, looked at again after the lag window (a
        write load moves both sides). A count that never settles is accepted as moving when
        the target's count, read between two reads of the source's, lies between them (keys
        being added or removed as it is read); the second list says which."""
        counts = self.counts()
        for _ in range(self.opts.rechecks):
            if all(c.ok for c in counts):
                return counts, []
            time.sleep(self.opts.lag_window_s)
            counts = self.counts()
        moving: list[str] = []
        settled = []
        for c in counts:
            if c.ok:
                settled.append(c)
                continue
            before = self._dbsize(self.src.conn, c.source_db)
            time.sleep(self.opts.lag_window_s)
            target = self._dbsize(self.tgt.conn, c.target_db)
            after = self._dbsize(self.src.conn, c.source_db)
            if before != after and min(before, after) <= target <= max(before, after):
                moving.append(f"db {c.source_db}: the source went from {before} to {after} "
                              f"keys while the target showed {target}")
                settled.append(DbCount(c.source_db, c.target_db, after, target, moving=True))
            else:
                settled.append(DbCount(c.source_db, c.target_db, after, target))
        return settled, moving


Marks = tuple[object, ...]
# INFO fields that move with every write, expiry, eviction, save and load
WRITE_MARKS = ("rdb_changes_since_last_save", "rdb_last_save_time", "rdb_saves",
               "rdb_bgsave_in_progress", "expired_keys", "evicted_keys", "loading")


def write_marks(conn: Conn) -> Marks | None:
    """What a server's INFO says about writes to it: unchanged between two looks, nothing
    was written, expired, evicted or loaded in between. None when INFO lacks the write
    counter (a server that does not keep one)."""
    info = conn.call("INFO")  # the default sections hold persistence and stats
    if not isinstance(info, bytes):  # refused
        return None
    fields = dict(line.split(":", 1) for line in info.decode(errors="replace").splitlines()
                  if ":" in line and not line.startswith("#"))
    if "rdb_changes_since_last_save" not in fields:
        return None
    return tuple(fields.get(name) for name in WRITE_MARKS)


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def verify(source: Endpoint, target: Endpoint, opts: VerifyOptions) -> VerifyReport:
    """Compare ``target`` with ``source``; the report lists what differs and why."""
    if not opts.full and opts.sample < 1:
        raise UsageError("--sample must be 1 or more")
    if opts.ttl_tolerance_ms < 0:
        raise UsageError("--ttl-tolerance must be 0 or more")
    started = time.monotonic()
    report = VerifyReport(mode="full" if opts.full else "sample")
    verifier = Verifier(source, target, opts)
    probe = LatencyProbe(source).start() if verifier.limiter is not None else None
    try:
        suspects = verifier.walk(report)
        if len(suspects) >= opts.max_suspects:
            report.notes.append(f"stopped after {len(suspects)} suspect keys")
        final = verifier.recheck(suspects, report)
        if not opts.match:
            report.counts, moving = verifier.stable_counts()
            if moving:
                report.notes.append("key counts were moving under writes and are not counted "
                                    "as mismatches (" + "; ".join(moving) + "); compare again "
                                    "when writes stop")
            for c in report.counts:
                if not c.ok:
                    final.append(Mismatch(c.source_db, b"", "count",
                                          f"{c.source_keys} keys in source db {c.source_db}, "
                                          f"{c.target_keys} in target db {c.target_db}"))
        else:
            report.notes.append("--match given: key counts per database are not compared")
        if "field-ttl" in opts.allow_loss:
            report.known = [m for m in final if m.kind == "field-ttl"]
            final = [m for m in final if m.kind != "field-ttl"]
            if report.known:
                report.notes.append(f"{len(report.known)} key(s) differ only in hash field "
                                    "TTLs, a loss allowed with --allow-loss field-ttl: known "
                                    "differences, not matches")
        if report.unsettled:
            report.notes.append(f"{len(report.unsettled)} key(s) were written between every "
                                "two looks and could not be compared (not counted as "
                                "mismatches); compare again when writes stop")
        if verifier.src.field_ttl and not verifier.tgt.field_ttl:
            report.notes.append("the target has no HPEXPIRETIME: a hash field TTL on the "
                                "source is reported as a field-ttl mismatch")
    finally:
        verifier.close()
        if probe is not None and verifier.limiter is not None:
            probe.close()
            report.throttle = verifier.limiter.figures()
            report.source_latency = probe.figures()
    report.mismatches = final[:opts.max_listed]
    report.unlisted_mismatches = max(0, len(final) - opts.max_listed)
    report.elapsed_s = time.monotonic() - started
    return report
