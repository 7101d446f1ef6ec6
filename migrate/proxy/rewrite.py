"""The RDB rewriter: a source's RDB in, an RDB the target loads out, as a stream.

Every record the target can load is passed through as the source's own bytes (no decoding:
the reader only steps over the value). What changes:

* the header: ``REDIS00NN`` / ``VALKEYNNN`` becomes the highest version the target loads
  when the source's is newer (Redis 8's ``REDIS0012`` -> ``REDIS0011`` for Valkey);
* keys of a type the target cannot load (hashes with field TTLs, Redis types 22-25, for
  Valkey 9 or Dragonfly) are taken out of the RDB, together with their expire / idle / freq
  prefix, and handed to ``on_command`` as ordinary commands (HSET + HPEXPIREAT, or HEXPIRE for
  Dragonfly) with a SELECT before them, to be sent right after the RDB;
* values nothing on the target can hold (module values: vector sets, JSON, Bloom, ...; hash
  field TTLs for a target without field expiry) raise :class:`RewriteRefused` at the first
  one, before anything was written (the caller spools the output and only then serves it);
* the trailing CRC64 is recomputed over the bytes written.

Memory: bounded by the largest single value (the bytes of one record are held until the
rewriter knows whether it passes), not by the file size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from migrate.apply.commands import ApplyOptions, Command, CommandBuilder
from migrate.apply.target import Target
from migrate.compat.rdb import max_rdb_loadable
from migrate.errors import ExitCode, KvmError
from migrate.rdb import End, Entry, RdbFormatError, RdbReader
from migrate.rdb.crc64 import crc64
from migrate.rdb.source import Readable
from migrate.rdb.types.skim import SKIMMABLE

FLUSH_BYTES = 1 << 20  # pass bytes on in pieces of about this size
READ_BYTES = 1 << 20
HEADER_LEN = 9


class RewriteRefused(KvmError):
    """The RDB holds a value the target cannot hold in any form (nothing was served):
    exit 1, as preflight exits for a blocker."""

    exit_code = ExitCode.FINDINGS


@dataclass
class RewriteStats:
    source_header: str = ""
    target_header: str = ""
    keys_passed: int = 0
    keys_out_of_band: int = 0
    commands_out_of_band: int = 0
    out_of_band_by_type: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0
    bytes_out: int = 0
    expired_skipped: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"source_header": self.source_header, "target_header": self.target_header,
                "keys_passed": self.keys_passed, "keys_out_of_band": self.keys_out_of_band,
                "commands_out_of_band": self.commands_out_of_band,
                "out_of_band_by_type": dict(self.out_of_band_by_type),
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "expired_skipped": self.expired_skipped}


class _Tee:
    """The source stream, keeping what was read (from ``base`` on) until the rewriter has
    decided, record by record, to pass or drop it."""

    def __init__(self, raw: Readable):
        self._read = getattr(raw, "read1", None) or raw.read
        self.buf = bytearray()
        self.base = 0

    def read1(self, n: int = -1) -> bytes:
        data = self._read(n)
        self.buf += data
        return data

    read = read1

    def take(self, upto: int) -> bytes:
        """The kept bytes from ``base`` to ``upto`` (source offsets), then forget them."""
        cut = upto - self.base
        data = bytes(self.buf[:cut])
        del self.buf[:cut]
        self.base = upto
        return data


def target_rdb_header(magic: str, version: int, target: Target) -> bytes:
    """The header the target loads: the source's own when the target reads it, otherwise
    the highest REDIS version the target reads (Valkey 9 included: it reads REDIS0011)."""
    most = max_rdb_loadable(target.identity) or 9
    redis_most = 11 if (target.flavor == "valkey" and most >= 80) else most
    if magic == "REDIS":
        return b"REDIS%04d" % min(version, redis_most)
    if target.flavor == "valkey" and most >= version:
        return b"VALKEY%03d" % version
    return b"REDIS%04d" % min(11, redis_most)


def _refusal(e: Entry, target: Target) -> str | None:
    if e.kind == "module":
        name = getattr(e.value, "name", None) or "module"
        return f"key {e.key!r} (db {e.db}) is a module value ({name}): {target} cannot " \
               "load it"
    if e.field_expires and target.field_ttl_mode is None:
        return f"key {e.key!r} (db {e.db}) is a hash with field TTLs: {target} has no " \
               "field expiry"
    return None


def rewrite_rdb(source: Readable, write: Callable[[bytes], object], target: Target,
                on_command: Callable[[Command], object], *, limit: int | None = None,
                now_ms: Callable[[], int] | None = None) -> RewriteStats:
    """Stream ``source`` (an RDB) to ``write`` as an RDB ``target`` loads; commands for the
    keys taken out go to ``on_command`` (SELECT included). Raises :class:`RewriteRefused`
    at the first value the target cannot hold, RdbFormatError for a malformed input."""
    tee = _Tee(source)
    passes = target.restores

    def skim(type_code: int, at: int) -> bool:
        return type_code in SKIMMABLE and type_code != 7 and passes(type_code, magic)

    reader = RdbReader(tee, skim=skim, limit=limit)
    producer = reader.producer
    magic = producer.magic
    options = ApplyOptions() if now_ms is None else ApplyOptions(now_ms=now_ms)
    builder = CommandBuilder(target, magic, options)
    stats = RewriteStats()
    header = target_rdb_header(magic, producer.rdb_version, target)
    stats.source_header = tee.take(HEADER_LEN).decode()
    stats.target_header = header.decode()
    crc = crc64(header)
    stats.bytes_out = len(header)
    write(header)
    pos = prev_end = HEADER_LEN  # pos: decided up to here; prev_end: end of the last record
    dropping = False
    oob_db: int | None = None

    def emit(upto: int) -> None:
        nonlocal crc, pos
        if upto > pos:
            data = tee.take(upto)
            crc = crc64(data, crc)
            stats.bytes_out += len(data)
            write(data)
            pos = upto

    def drop(upto: int) -> None:
        nonlocal pos
        tee.take(upto)
        pos = upto

    inp = reader.input
    for rec in reader.records():
        end = inp.offset
        if isinstance(rec, End):
            emit(rec.offset + 1)
            if producer.rdb_version >= 5:
                trailer = crc.to_bytes(8, "little")
                write(trailer)
                stats.bytes_out += len(trailer)
            stats.bytes_in = end
            break
        if isinstance(rec, Entry):
            take_out = dropping or rec.kind == "module" or not (
                rec.skimmed or passes(rec.type_code, magic))
            if take_out:
                if rec.part == 0:
                    why = _refusal(rec, target)
                    if why:
                        raise RewriteRefused(f"the source's RDB cannot go to the target: {why}",
                                             "preflight lists such keys; remove or convert "
                                             "them on the source, or use another target")
                    emit(prev_end)
                expired_before = builder.stats.expired_skipped
                cmds = builder.commands(rec)
                if cmds and oob_db != rec.db:
                    on_command(("SELECT", rec.db))
                    oob_db = rec.db
                    stats.commands_out_of_band += 1
                for cmd in cmds:
                    on_command(cmd)
                stats.commands_out_of_band += len(cmds)
                dropping = not rec.final
                if rec.final:
                    drop(end)
                    if builder.stats.expired_skipped > expired_before:
                        stats.expired_skipped += 1
                    else:
                        stats.keys_out_of_band += 1
                        stats.out_of_band_by_type[rec.encoding] += 1
                prev_end = end
                continue
            if rec.final:
                stats.keys_passed += 1
        prev_end = end
        if prev_end - pos >= FLUSH_BYTES:
            emit(prev_end)
    return stats


def _read_exactly(read: Callable[[int], bytes], n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = read(n - len(out))
        if not chunk:
            raise RdbFormatError(len(out), f"truncated: the RDB ended after {len(out)} bytes")
        out += chunk
    return out


def pass_through_rdb(source: Readable, write: Callable[[bytes], object],
                     target: Target) -> RewriteStats:
    """Copy an RDB whose every record the target loads (see :mod:`migrate.proxy.plan`),
    changing only the header and writing a zero checksum ("none", which every loader
    accepts). The source's own checksum is verified on the way, so a damaged transfer is
    caught here; the records are not parsed."""
    read = getattr(source, "read1", None) or source.read
    head = _read_exactly(read, HEADER_LEN)
    if head.startswith(b"REDIS") and head[5:].isdigit():
        magic, version = "REDIS", int(head[5:])
    elif head.startswith(b"VALKEY") and head[6:].isdigit():
        magic, version = "VALKEY", int(head[6:])
    else:
        raise RdbFormatError(0, f"not an RDB file: wrong magic {head!r}")
    header = target_rdb_header(magic, version, target)
    stats = RewriteStats(source_header=head.decode(), target_header=header.decode())
    write(header)
    crc = crc64(head)
    tail = b""
    total = HEADER_LEN
    keep = 8 if version >= 5 else 0
    while chunk := read(READ_BYTES):
        total += len(chunk)
        data = tail + chunk if tail else chunk
        body, tail = (data[:-keep], data[-keep:]) if keep else (data, b"")
        if body:
            crc = crc64(body, crc)
            write(body)
            stats.bytes_out += len(body)
    if len(tail) != keep:
        raise RdbFormatError(total, "truncated: the RDB ended inside its checksum")
    if keep:
        stored = int.from_bytes(tail, "little")
        if stored and stored != crc:
            raise RdbFormatError(total - 8, f"bad checksum: the file says {stored:016x}, its "
                                            f"content hashes to {crc:016x}")
        write(bytes(8))
    stats.bytes_in = total
    stats.bytes_out += len(header) + keep
    return stats
